use eslock::{Error, LockManager, exclusive};

mod locks {
    eslock::lock_names! {
        /// Schema migrations.
        pub MIGRATIONS = "migrations";
        pub REINDEX = "reindex/{source}";
    }
}

#[exclusive(locks::MIGRATIONS, manager = manager)]
async fn migrate(manager: &LockManager) -> Result<(), Error> {
    assert!(manager.get(locks::MIGRATIONS).await?.is_some());
    Ok(())
}

#[exclusive(locks::REINDEX, manager = manager, ttl = "1m")]
async fn reindex(manager: &LockManager, source: &str) -> Result<String, Error> {
    Ok(manager.get(format!("reindex/{source}")).await?.unwrap().lock_id.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let manager = LockManager::in_memory();
    migrate(&manager).await.unwrap();
    assert_eq!(reindex(&manager, "logs").await.unwrap(), "reindex/logs");
}
