#[eslock::exclusive("jobs/nightly")]
async fn nightly() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
