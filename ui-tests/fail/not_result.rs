#[eslock::exclusive("jobs/nightly")]
async fn nightly() -> u64 {
    7
}

fn main() {}
