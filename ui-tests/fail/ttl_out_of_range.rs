#[eslock::exclusive("jobs/fast", ttl = "5ms")]
async fn fast() -> Result<(), eslock::Error> {
    Ok(())
}

#[eslock::exclusive("jobs/forever", ttl = "40000d")]
async fn forever() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
