use std::fmt::Display;

use eslock::{Error, LockManager, exclusive};

#[derive(Debug)]
enum AppError {
    Lock(Error),
    Invalid(String),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError::Lock(error)
    }
}

#[exclusive("copy/{source}/{target}", manager = locks)]
async fn copy<'a, T: Display>(locks: &LockManager, source: &'a str, target: T, rows: &mut Vec<String>) -> Result<&'a str, AppError> {
    if source.is_empty() {
        return Err(AppError::Invalid("empty source".into()));
    }
    let parsed: u32 = "7".parse().map_err(|_| AppError::Invalid("number".into()))?;
    rows.push(format!("{source}->{target}:{parsed}"));
    Ok(source)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let locks = LockManager::in_memory();
    let mut rows = Vec::new();
    assert_eq!(copy(&locks, "logs", 2024, &mut rows).await.unwrap(), "logs");
    assert_eq!(rows, ["logs->2024:7"]);
    assert!(matches!(copy(&locks, "bad id", 1, &mut rows).await, Err(AppError::Lock(Error::InvalidLockId(_)))));
}
