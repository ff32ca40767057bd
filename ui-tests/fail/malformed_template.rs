#[eslock::exclusive("reindex/{source")]
async fn reindex(source: &str) -> Result<(), eslock::Error> {
    let _ = source;
    Ok(())
}

fn main() {}
