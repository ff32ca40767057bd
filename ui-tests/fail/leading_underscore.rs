#[eslock::exclusive("_internal")]
async fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
