#[eslock::exclusive("nightly report!")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
