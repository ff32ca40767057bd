const OWNER: &str = "reports";

#[eslock::exclusive("jobs/nightly", metadata(owner = OWNER))]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
