#[eslock::exclusive("jobs/nightly")]
fn nightly() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
