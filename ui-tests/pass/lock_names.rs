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
    // A complete name is a lock id; a template is filled first.
    let _: eslock::LockName = locks::MIGRATIONS;
    let _: eslock::LockTemplate = locks::REINDEX;
    assert_eq!(locks::REINDEX.placeholders(), ["source"]);
    let id = locks::REINDEX.fill(|_| Some("logs".to_string())).unwrap();
    let manager = LockManager::in_memory();
    assert!(manager.get(&id).await.unwrap().is_none());
    migrate(&manager).await.unwrap();
    assert_eq!(reindex(&manager, "logs").await.unwrap(), "reindex/logs");
}
