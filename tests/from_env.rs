//! `LockManager::from_env()`: the cluster in `ELASTICSEARCH_URL` with the
//! credentials of the environment, else the in-memory store.
//!
//! One test, on one thread: it changes the process environment, which no
//! other test of this binary may read meanwhile.

use eslock::store::elasticsearch::{API_KEY_VAR, PASSWORD_VAR, URL_VAR, USERNAME_VAR};
use eslock::{Error, LockManager, LockOptions};
use eslock_test_support::recorder::{Recorder, base64};
use eslock_test_support::{required_engine_url, unique_name};

/// Sets (or, with `None`, removes) the `ELASTICSEARCH_*` variables.
fn set_env(vars: &[(&str, Option<&str>)]) {
    for (name, value) in vars {
        // SAFETY: this binary's only test runs on one thread (see above).
        unsafe {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn from_env_chooses_the_store_and_credentials() {
    let engine = required_engine_url();

    // The engine, with two URLs (the same node twice), as a cluster of several nodes.
    set_env(&[(URL_VAR, Some(&format!("{engine},{engine}"))), (API_KEY_VAR, None), (USERNAME_VAR, None), (PASSWORD_VAR, None)]);
    let manager = LockManager::from_env().unwrap();
    assert_eq!(manager.index(), Some(".eslock-locks-000001"));
    let id = unique_name("from-env");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    assert_eq!(manager.get(&id).await.unwrap().unwrap().token, lease.token());
    assert!(lease.release().await.unwrap());

    // Credentials go with every request.
    let recorder = Recorder::start();
    set_env(&[(URL_VAR, Some(&recorder.url)), (USERNAME_VAR, Some("locks")), (PASSWORD_VAR, Some("s3cret"))]);
    let refused = LockManager::from_env().unwrap().setup().await.unwrap_err();
    assert!(matches!(&refused, Error::Backend(err) if err.status() == Some(401)), "{refused:?}");
    set_env(&[(USERNAME_VAR, None), (PASSWORD_VAR, None), (API_KEY_VAR, Some("ZW5jb2RlZA=="))]);
    assert!(LockManager::from_env().unwrap().setup().await.is_err());
    let sent = recorder.authorizations();
    assert_eq!(sent.first(), Some(&format!("Basic {}", base64(b"locks:s3cret"))), "{sent:?}");
    assert_eq!(sent.last(), Some(&"ApiKey ZW5jb2RlZA==".to_string()), "{sent:?}");

    // A user name without a password is refused before any request.
    set_env(&[(API_KEY_VAR, None), (USERNAME_VAR, Some("locks"))]);
    assert!(matches!(LockManager::from_env(), Err(Error::InvalidOption(_))));

    // No URL: the in-memory store.
    set_env(&[(URL_VAR, None), (USERNAME_VAR, None)]);
    let in_memory = LockManager::from_env().unwrap();
    assert_eq!(in_memory.index(), None);
    let lease = in_memory.acquire("from-env", LockOptions::default()).await.unwrap();
    assert!(lease.release().await.unwrap());
}
