#[eslock::exclusive("jobs/nightly", ttl = "soon")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
