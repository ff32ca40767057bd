#[eslock::exclusive("jobs/nightly", wait = "30")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
