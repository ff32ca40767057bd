#[eslock::exclusive("reindex/{sorce}")]
async fn reindex(source: &str) -> Result<(), eslock::Error> {
    let _ = source;
    Ok(())
}

fn main() {}
