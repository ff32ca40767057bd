//! A client process for the clock tests, run under libfaketime with its wall
//! clock hours off (`tests/lease_faults.rs`). Each check exits 0 when eslock
//! behaved, and 1 with the reason otherwise.
//!
//! ```text
//! skewed_client held URL ALIAS LOCK_ID TOKEN   # the lock is seen held by TOKEN and cannot be taken
//! skewed_client free URL ALIAS LOCK_ID         # the expired lock is seen free
//! skewed_client repair URL ALIAS               # setup refuses to repair: the index holds a live lock
//! ```

use eslock::{ElasticsearchStore, Error, LockManager, LockOptions};

fn manager(url: &str, alias: &str) -> LockManager {
    let client = eslock::store::elasticsearch::client(url).expect("a valid engine URL");
    LockManager::builder().store(ElasticsearchStore::builder(client).index_name(alias).build()).build()
}

async fn check(args: &[String]) -> Result<(), String> {
    match args {
        [command, url, alias, id, token] if command == "held" => {
            let manager = manager(url, alias);
            let seen = manager.get(id).await.map_err(|err| err.to_string())?;
            if seen.as_ref().map(|info| info.token.as_str()) != Some(token.as_str()) {
                return Err(format!("get: expected the lock held by {token}, saw {seen:?}"));
            }
            let listed = manager.list().await.map_err(|err| err.to_string())?;
            if !listed.iter().any(|info| &info.lock_id == id) {
                return Err(format!("list: the live lock {id} is missing"));
            }
            match manager.acquire(id, LockOptions::default()).await {
                Err(Error::Acquisition(_)) => Ok(()),
                other => Err(format!("acquire: a live lock was not refused: {other:?}")),
            }
        }
        [command, url, alias, id] if command == "free" => {
            let manager = manager(url, alias);
            let seen = manager.get(id).await.map_err(|err| err.to_string())?;
            if seen.is_some() {
                return Err(format!("get: an expired lock is reported held: {seen:?}"));
            }
            let listed = manager.list().await.map_err(|err| err.to_string())?;
            if listed.iter().any(|info| &info.lock_id == id) {
                return Err(format!("list: the expired lock {id} is listed"));
            }
            Ok(())
        }
        [command, url, alias] if command == "repair" => match manager(url, alias).setup().await {
            Err(Error::IncompatibleIndex(_)) => Ok(()),
            other => Err(format!("setup: expected IncompatibleIndex (a live lock), got {other:?}")),
        },
        _ => Err(format!("usage: see the source; got {args:?}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(reason) = check(&args).await {
        eprintln!("skewed_client: {reason}");
        std::process::exit(1);
    }
}
