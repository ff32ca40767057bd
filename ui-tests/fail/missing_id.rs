#[eslock::exclusive]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
