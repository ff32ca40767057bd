#[eslock::exclusive(ttl = "10s", "jobs/nightly")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
