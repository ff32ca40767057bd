#[eslock::exclusive("jobs/nightly", ttl = "10s", ttl = "20s")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
