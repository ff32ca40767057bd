eslock::lock_names! {
    pub MIGRATIONS = "migrations";
}

#[eslock::exclusive(MIGRATONS)]
async fn migrate() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
