#[eslock::exclusive("jobs/nightly", metadata(owner = "a", owner = "b"))]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
