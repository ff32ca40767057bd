eslock::lock_names! {
    pub REINDEX = "reindex/{source}";
}

#[eslock::exclusive(REINDEX)]
async fn reindex(index: &str) -> Result<(), eslock::Error> {
    let _ = index;
    Ok(())
}

fn main() {}
