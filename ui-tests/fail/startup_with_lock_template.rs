eslock::lock_names! {
    pub REINDEX = "reindex/{source}";
}

// A start-up task has no parameters to fill a template with.
#[eslock::exclusive(REINDEX, startup)]
async fn reindex() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
