//! The fault-injecting proxy (`eslock_test_support::proxy`) against the real engine:
//! each mode does what the fault suites rely on.

use std::io::ErrorKind;
use std::time::Duration;

use elasticsearch::http::StatusCode;
use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use eslock_test_support::proxy::{FaultProxy, Mode};
use eslock_test_support::{client_for, engine_client, engine_url};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// The engine (directly), a proxy in front of it, a client through the proxy
/// and a fresh index.
struct Setup {
    engine: Elasticsearch,
    proxy: FaultProxy,
    via_proxy: Elasticsearch,
    index: String,
}

async fn setup() -> Setup {
    let engine = engine_client(); // fails, with instructions, when no engine is configured
    let proxy = FaultProxy::start(&engine_url().unwrap()).await;
    let via_proxy = client_for(proxy.url());
    let index = eslock_test_support::create_scratch_index(&engine, "fault-proxy").await;
    Setup { engine, proxy, via_proxy, index }
}

impl Setup {
    /// Indexes document `id` through the proxy, in the background.
    fn index_via_proxy(&self, id: &str) -> JoinHandle<Result<StatusCode, elasticsearch::Error>> {
        let (client, index, id) = (self.via_proxy.clone(), self.index.clone(), id.to_string());
        tokio::spawn(async move {
            let request = client.index(IndexParts::IndexId(&index, &id)).body(json!({ "id": id }));
            request.send().await.map(|response| response.status_code())
        })
    }

    /// Whether the engine holds document `id` (asked directly, real-time GET).
    async fn stored(&self, id: &str) -> bool {
        let response = self.engine.get(GetParts::IndexId(&self.index, id)).send().await.unwrap();
        response.status_code() == StatusCode::OK
    }

    async fn wait_until_stored(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stored(id).await {
            assert!(Instant::now() < deadline, "the engine never stored {id}");
            sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits (at most 10 s) for a background request to finish.
async fn finished<T>(task: JoinHandle<T>) -> T {
    timeout(Duration::from_secs(10), task).await.expect("the request never finished").unwrap()
}

/// Sends `HEAD /` on a raw connection and reads the reply's head.
async fn head(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.write_all(b"HEAD / HTTP/1.1\r\nhost: engine\r\n\r\n").await?;
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if stream.read(&mut byte).await? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        reply.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test]
async fn pass_forwards_everything_and_counts_requests_and_connections() {
    let s = setup().await;
    assert_eq!(finished(s.index_via_proxy("a")).await.unwrap(), StatusCode::CREATED);
    let got = s.via_proxy.get(GetParts::IndexId(&s.index, "a")).send().await.unwrap();
    assert_eq!(got.status_code(), StatusCode::OK);

    let index = &s.index;
    assert_eq!(s.proxy.request_lines(), [format!("POST /{index}/_doc/a"), format!("GET /{index}/_doc/a")]);
    assert_eq!(s.proxy.requests(), 2);
    assert!(s.proxy.connections() >= 1);
    assert!(s.proxy.bytes_to_engine() > 0);
}

#[tokio::test]
async fn held_replies_arrive_after_the_engine_executed_the_request() {
    let s = setup().await;
    s.proxy.set_mode(Mode::HoldReplies);
    let write = s.index_via_proxy("held");
    s.wait_until_stored("held").await;
    sleep(Duration::from_millis(500)).await;
    assert!(!write.is_finished(), "the reply got through while held");
    assert_eq!(s.proxy.requests(), 1);

    s.proxy.set_mode(Mode::Pass);
    assert_eq!(finished(write).await.unwrap(), StatusCode::CREATED);
}

#[tokio::test]
async fn dropped_held_replies_reset_the_client() {
    let s = setup().await;
    s.proxy.set_mode(Mode::HoldReplies);
    let write = s.index_via_proxy("dropped");
    s.wait_until_stored("dropped").await;
    s.proxy.drop_held();
    let outcome = finished(write).await;
    assert!(outcome.is_err(), "the client got a reply: {outcome:?}");

    // The mode stays; once it passes again, requests work.
    assert_eq!(s.proxy.mode(), Mode::HoldReplies);
    s.proxy.set_mode(Mode::Pass);
    assert_eq!(finished(s.index_via_proxy("after")).await.unwrap(), StatusCode::CREATED);
}

#[tokio::test]
async fn delayed_replies_arrive_late_after_the_engine_executed_the_request() {
    let s = setup().await;
    let delay = Duration::from_millis(1500);
    s.proxy.set_mode(Mode::DelayReplies(delay));
    let started = Instant::now();
    let write = s.index_via_proxy("delayed");
    s.wait_until_stored("delayed").await;
    assert!(!write.is_finished(), "the reply was not delayed");

    assert_eq!(finished(write).await.unwrap(), StatusCode::CREATED);
    let took = started.elapsed();
    assert!(took >= delay && took < delay + Duration::from_secs(5), "the reply took {took:?}");

    s.proxy.set_mode(Mode::Pass);
    let started = Instant::now();
    assert_eq!(finished(s.index_via_proxy("prompt")).await.unwrap(), StatusCode::CREATED);
    assert!(started.elapsed() < delay, "Pass still delays: {:?}", started.elapsed());
}

#[tokio::test]
async fn blackhole_forwards_nothing_until_it_ends_and_keeps_connections_open() {
    let s = setup().await;
    let mut open = TcpStream::connect(s.proxy.url().trim_start_matches("http://")).await.unwrap();
    s.proxy.set_mode(Mode::Blackhole);

    // A request times out without reaching the engine.
    let outcome = s
        .via_proxy
        .index(IndexParts::IndexId(&s.index, "lost"))
        .body(json!({}))
        .request_timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(outcome.as_ref().is_err_and(|err| err.is_timeout()), "expected a timeout: {outcome:?}");
    assert!(!s.stored("lost").await);
    assert_eq!(s.proxy.requests(), 0);

    // An open connection stays open; its request waits.
    let pending = tokio::spawn(async move { head(&mut open).await.map(|reply| (reply, open)) });
    sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "a reply crossed the blackhole");

    // When the partition ends, what was sent into it goes through, as TCP
    // retransmits it: the waiting request gets its reply, and the request
    // whose client gave up still executes.
    s.proxy.set_mode(Mode::Pass);
    let (reply, _open) = finished(pending).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    s.wait_until_stored("lost").await;
    assert_eq!(s.proxy.requests(), 2);
}

#[tokio::test]
async fn reset_cuts_open_and_new_connections_with_rst() {
    let s = setup().await;
    let address = s.proxy.url().trim_start_matches("http://").to_string();
    let mut open = TcpStream::connect(&address).await.unwrap();
    assert!(head(&mut open).await.unwrap().starts_with("HTTP/1.1 200"));

    s.proxy.set_mode(Mode::Reset);
    let mut byte = [0];
    let read = timeout(Duration::from_secs(2), open.read(&mut byte)).await.expect("no reset within 2 s");
    assert_eq!(read.map_err(|err| err.kind()), Err(ErrorKind::ConnectionReset), "an open connection");

    let mut new = TcpStream::connect(&address).await.unwrap();
    let read = timeout(Duration::from_secs(2), head(&mut new)).await.expect("no reset within 2 s");
    assert_eq!(read.map_err(|err| err.kind()), Err(ErrorKind::ConnectionReset), "a new connection");

    let started = Instant::now();
    let outcome = finished(s.index_via_proxy("reset")).await;
    assert!(
        outcome.is_err() && started.elapsed() < Duration::from_secs(2),
        "{outcome:?} after {:?}",
        started.elapsed()
    );

    s.proxy.set_mode(Mode::Pass);
    assert_eq!(finished(s.index_via_proxy("after")).await.unwrap(), StatusCode::CREATED);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_port_and_connections() {
    let s = setup().await;
    let address = s.proxy.url().trim_start_matches("http://").to_string();
    let mut open = TcpStream::connect(&address).await.unwrap();
    assert!(head(&mut open).await.unwrap().starts_with("HTTP/1.1 200"));

    drop(s.proxy);
    let mut byte = [0];
    let read = timeout(Duration::from_secs(2), open.read(&mut byte)).await.expect("the connection stayed open");
    assert!(!matches!(read, Ok(1)), "{read:?}");
    sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(&address).await.is_err(), "the proxy still listens");
}
