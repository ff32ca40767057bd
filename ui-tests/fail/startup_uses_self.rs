// A start-up task in an impl runs outside it (the runner calls it with no
// value): its body names the type, not `Self`; rustc says so at the `Self`.
struct Schema;

impl Schema {
    const VERSION: u32 = 2;

    #[eslock::exclusive("bootstrap/schema", startup)]
    async fn migrate() -> Result<(), eslock::Error> {
        let _ = Self::VERSION;
        Ok(())
    }
}

fn main() {}
