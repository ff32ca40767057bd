//! Transient failures between eslock and the real engine: a small TCP front
//! on 127.0.0.1 answers the next N connections with an HTTP error (or drops
//! them) and passes every other connection through to the engine unchanged.
//! 429/502/503/504 and dropped connections are retried a bounded number of
//! times; other errors surface at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::headers::{CONNECTION, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use eslock::{Error, LockManager, LockOptions, Operation};
use eslock_test_support::{engine_url, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Fault {
    Status(u16),
    Drop,
}

/// The fault-injecting front.
struct Front {
    url: String,
    /// Connections still to fail.
    armed: Arc<AtomicUsize>,
    /// Connections that were failed.
    injected: Arc<AtomicUsize>,
}

impl Front {
    async fn start(fault: Fault) -> Front {
        let engine = engine_url().expect("ELASTICSEARCH_URL is set by scripts/test");
        let engine = engine.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicUsize::new(0));
        let injected = Arc::new(AtomicUsize::new(0));
        let (task_armed, task_injected) = (Arc::clone(&armed), Arc::clone(&injected));
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let fail = task_armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if fail {
                    task_injected.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(inject(client, fault));
                } else {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        let mut client = client;
                        if let Ok(mut upstream) = TcpStream::connect(&engine).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                }
            }
        });
        Front { url, armed, injected }
    }

    fn arm(&self, connections: usize) {
        self.armed.store(connections, Ordering::SeqCst);
    }

    fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// A manager whose every request opens a new connection through the front.
    fn manager(&self, index: &str) -> LockManager {
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(self.url.parse().unwrap()))
            .header(CONNECTION, HeaderValue::from_static("close"))
            .build()
            .unwrap();
        eslock_test_support::manager_on(Elasticsearch::new(transport), index)
    }
}

/// Reads the request, then answers with the fault.
async fn inject(mut client: TcpStream, fault: Fault) {
    match fault {
        Fault::Drop => drop(client),
        Fault::Status(status) => {
            read_request(&mut client).await;
            let body = format!(r#"{{"error":{{"type":"injected","reason":"injected {status}"}},"status":{status}}}"#);
            let response = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
        }
    }
}

async fn read_request(client: &mut TcpStream) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(read) = client.read(&mut buffer).await else { return };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = headers
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return;
            }
        }
    }
}

#[tokio::test]
async fn transient_statuses_are_retried() {
    for status in [429, 502, 503, 504] {
        let front = Front::start(Fault::Status(status)).await;
        let manager = front.manager(&unique_name("transient"));
        manager.setup().await.unwrap();
        front.arm(3);
        let lease = manager.acquire("transient/job", LockOptions::default()).await.unwrap();
        assert_eq!(front.injected(), 3, "status {status}");
        assert!(lease.release().await.unwrap());
    }
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let front = Front::start(Fault::Drop).await;
    let manager = front.manager(&unique_name("dropped"));
    manager.setup().await.unwrap();
    front.arm(2);
    let lease = manager.acquire("dropped/job", LockOptions::default()).await.unwrap();
    assert_eq!(front.injected(), 2);
    assert!(manager.get("dropped/job").await.unwrap().is_some());
    assert!(lease.release().await.unwrap());
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_is_typed() {
    let front = Front::start(Fault::Status(503)).await;
    let manager = front.manager(&unique_name("bounded"));
    manager.setup().await.unwrap();
    front.arm(100);
    let err = manager.acquire("bounded/job", LockOptions::default()).await.unwrap_err();
    let Error::Backend(backend) = &err else { panic!("{err:?}") };
    assert_eq!(backend.operation(), Operation::Acquire);
    assert_eq!(backend.lock_id().map(|id| id.as_str()), Some("bounded/job"));
    assert_eq!(backend.status(), Some(503));
    assert_eq!(front.injected(), 4, "one request and three retries");
}

#[tokio::test]
async fn other_errors_surface_at_once() {
    let front = Front::start(Fault::Status(400)).await;
    let manager = front.manager(&unique_name("at-once"));
    manager.setup().await.unwrap();
    front.arm(5);
    let err = manager.get("at-once/job").await.unwrap_err();
    let Error::Backend(backend) = &err else { panic!("{err:?}") };
    assert_eq!(backend.status(), Some(400));
    assert_eq!(front.injected(), 1, "not retried");
}

#[tokio::test]
async fn renewal_rides_out_transient_failures() {
    let front = Front::start(Fault::Drop).await;
    let index = unique_name("renewal-faults");
    let manager = front.manager(&index);
    let lease = manager.acquire("renewal/job", LockOptions::default().ttl(Duration::from_secs(3))).await.unwrap();
    // The next renewal (after 1 s) meets dropped connections, retries, and succeeds.
    front.arm(2);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(front.injected(), 2);
    assert!(!lease.is_lost());
    let info = manager.get("renewal/job").await.unwrap().unwrap();
    assert_eq!(info.token, lease.token());
    assert!(lease.release().await.unwrap());
}
