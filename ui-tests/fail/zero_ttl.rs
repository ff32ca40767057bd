#[eslock::exclusive("jobs/nightly", ttl = "0s")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
