#[eslock::exclusive("jobs/nightly", retries = 3)]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
