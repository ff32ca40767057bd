//! When a lease's background task runs: it starts half-way to the first
//! renewal (from the manager's timetable, one task per runtime), not at
//! acquisition. These tests hold the guarantees that change could break:
//! renewals still come on time, on every runtime, on Tokio's clock; and
//! short leases really cost no task.

use std::sync::mpsc;
use std::time::Duration;

use eslock::{LockManager, LockOptions};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Many short leases at once: no task each. The count of live tasks stays
/// flat however many leases are held (one timetable task per runtime).
#[test]
fn held_leases_do_not_each_start_a_task() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let manager = LockManager::in_memory();
        let first = manager.acquire("tasks/0", LockOptions::default()).await.unwrap();
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let mut leases = Vec::new();
        for i in 1..=100 {
            leases.push(manager.acquire(format!("tasks/{i}"), LockOptions::default()).await.unwrap());
        }
        let now = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert!(now <= tasks + 1, "100 new leases started {} tasks", now - tasks);
        for lease in leases {
            assert!(lease.release().await.unwrap());
        }
        assert!(first.release().await.unwrap());
    });
}

/// On a paused clock, a lease held for many TTLs is renewed on time: the
/// timetable follows Tokio's clock, as every lease deadline does.
#[tokio::test(start_paused = true)]
async fn paused_clock_still_renews() {
    let holder = LockManager::in_memory();
    let lease = holder.acquire("paused/renew", LockOptions::default().ttl(Duration::from_secs(3))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!lease.is_lost(), "not renewed on the paused clock: {:?}", lease.lost_reason());
    assert!(holder.acquire("paused/renew", LockOptions::default()).await.is_err(), "still held");
    assert!(lease.release().await.unwrap());
}

/// A runtime that ends while another runtime's lease waits for its first
/// renewal does not take that renewal with it: each runtime's leases are
/// started by a task of their own runtime.
#[test]
fn a_runtime_ending_leaves_other_runtimes_renewing() {
    let manager = LockManager::in_memory();
    let (acquired, proceed) = (mpsc::channel(), mpsc::channel::<()>());
    let first = std::thread::spawn({
        let manager = manager.clone();
        move || {
            let runtime = multi_thread();
            runtime.block_on(async {
                let lease = manager.acquire("runtimes/first", LockOptions::default().ttl(Duration::from_secs(30))).await.unwrap();
                acquired.0.send(()).unwrap();
                proceed.1.recv().unwrap();
                std::mem::forget(lease);
            });
            // The first runtime ends here, its timetable task with it.
        }
    });
    acquired.1.recv().unwrap();
    let second = multi_thread();
    second.block_on(async {
        let lease = manager.acquire("runtimes/second", LockOptions::default().ttl(Duration::from_millis(600))).await.unwrap();
        proceed.0.send(()).unwrap();
        first.join().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!lease.is_lost(), "the second runtime's lease was not renewed: {:?}", lease.lost_reason());
        assert!(lease.release().await.unwrap());
    });
}
