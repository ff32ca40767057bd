//! Issue 10: acquires and releases of one store share `_bulk` requests
//! (store/elasticsearch/coalesce.rs), and no write waits on another for
//! long, hangs, or reads another's reply. Each test drives an
//! `ElasticsearchStore` against a small programmable fake engine defined
//! here, which answers `_update` and `_bulk` requests like the real one but
//! lets a test slow down, silence or refuse the writes of chosen lock ids.
//! (What the real engine does with shared requests:
//! `elasticsearch_specifics::concurrent_lock_writes_share_requests_and_keep_their_own_outcomes`.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eslock::store::{AcquireOutcome, AcquireRequest, LockStore};
use eslock::{ElasticsearchStore, LockId};
use eslock_test_support::client_for;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake engine does with one request.
#[derive(Clone)]
enum Act {
    Now(u16, Value),
    After(Duration, u16, Value),
    /// Says nothing until the client gives up.
    Never,
}

type Handler = Arc<dyn Fn(&str, &str) -> Act + Send + Sync>;

struct Fake {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let log = Arc::clone(&log);
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((socket, _)) = listener.accept().await {
                    while connections.try_join_next().is_some() {}
                    connections.spawn(answer(socket, Arc::clone(&handler), Arc::clone(&log)));
                }
            }
        });
        Fake { url, log, accept }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|line| line.contains(needle)).count()
    }
}

async fn answer(mut socket: TcpStream, handler: Handler, log: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string();
    let line = head.lines().next().unwrap_or_default().to_string();
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
    log.lock().unwrap().push(format!("{line} {}", body.lines().count()));
    let (status, reply) = match handler(&path, &body) {
        Act::Now(status, reply) => (status, reply),
        Act::After(delay, status, reply) => {
            tokio::time::sleep(delay).await;
            (status, reply)
        }
        Act::Never => {
            let mut sink = [0u8; 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
    };
    let text = reply.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        text.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(text.as_bytes()).await;
    let _ = socket.shutdown().await;
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// What the engine's scripts would answer to one update on a free lock:
/// an acquire is granted, a release finds its own release id recorded.
fn update_outcome(body: &Value) -> (u16, Value) {
    let params = &body["script"]["params"];
    if let Some(release_id) = params.get("release_id") {
        (200, json!({ "result": "updated", "get": { "_source": { "releasedBy": [release_id] } } }))
    } else {
        let token = params["token"].clone();
        let now = now_millis();
        let ttl = params["ttl"].as_u64().unwrap_or(30_000);
        (201, json!({ "result": "created", "get": { "_source": {
            "token": token, "createdAt": now, "expiresAt": now + ttl, "fencingToken": 1, "fencingTokenOwner": token
        } } }))
    }
}

/// The lock id of an `_update` path.
fn update_id(path: &str) -> Option<&str> {
    let rest = path.split("/_update/").nth(1)?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The `(id, update body)` pairs of a `_bulk` body.
fn bulk_writes(body: &str) -> Vec<(String, Value)> {
    let lines: Vec<Value> = body.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    lines
        .chunks(2)
        .map(|pair| (pair[0]["update"]["_id"].as_str().unwrap().to_string(), pair[1].clone()))
        .collect()
}

fn bulk_reply(items: Vec<Value>) -> Act {
    Act::Now(200, json!({ "took": 1, "errors": false, "items": items }))
}

fn item(id: &str, status: u16, mut reply: Value) -> Value {
    reply["_id"] = json!(id);
    reply["status"] = json!(status);
    json!({ "update": reply })
}

/// A handler: `_update` of an id by `single`, `_bulk` items as the engine
/// would answer them (every item granted or released).
fn handler(single: impl Fn(&str, &Value) -> Act + Send + Sync + 'static) -> Handler {
    Arc::new(move |path: &str, body: &str| {
        if path.contains("/_bulk") {
            let items = bulk_writes(body)
                .into_iter()
                .map(|(id, update)| {
                    let (status, reply) = update_outcome(&update);
                    item(&id, status, reply)
                })
                .collect();
            bulk_reply(items)
        } else if let Some(id) = update_id(path) {
            let update: Value = serde_json::from_str(body).unwrap();
            single(id, &update)
        } else {
            Act::Now(404, json!({ "error": { "type": "unexpected", "reason": path } }))
        }
    })
}

fn store(url: &str, timeout: Duration) -> Arc<ElasticsearchStore> {
    Arc::new(ElasticsearchStore::builder(client_for(url)).index_name("review").request_timeout(timeout).build())
}

fn request(id: &str, ttl: Duration) -> AcquireRequest {
    AcquireRequest { lock_id: LockId::new(id).unwrap(), token: uuid::Uuid::new_v4().to_string(), ttl, metadata: json!({}) }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Liveness: an acquire (TTL 3 s, attempt time limit 1 s) that queues
/// behind two releases a node swallows (4 s time limit, 4 attempts: 17 s)
/// leaves the queue once out of patience and goes alone: it is answered
/// within its TTL, not after the unrelated releases give up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquire_does_not_wait_for_unrelated_stuck_releases() {
    let fake = Fake::start(handler(|id, update| {
        if id.starts_with("stuck") {
            Act::Never
        } else {
            let (status, reply) = update_outcome(update);
            Act::Now(status, reply)
        }
    }))
    .await;
    let store = store(&fake.url, Duration::from_secs(4));
    for id in ["stuck-a", "stuck-b"] {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.release(&LockId::new(id).unwrap(), "some-token").await });
    }
    wait_for("both releases on their way", || fake.count("_update/stuck") >= 2).await;

    let ttl = Duration::from_secs(3);
    let started = Instant::now();
    let outcome = tokio::time::timeout(ttl, store.acquire(&request("unrelated", ttl))).await;
    assert!(
        matches!(outcome, Ok(Ok(AcquireOutcome::Acquired(_)))),
        "an acquire with a {ttl:?} TTL (1 s attempt timeout) got no answer within its TTL ({:?}) because two \
         unrelated releases were stuck: {outcome:?}; requests: {:?}",
        started.elapsed(),
        fake.lines()
    );
}

/// What the other runtime does once its write is answered.
#[derive(Debug, Clone, Copy)]
enum OtherRuntime {
    /// Stays, but is not driven any more (a sync wrapper doing sync work).
    StaysIdle,
    /// Ends (a per-call runtime; one `#[tokio::test]` of many).
    Ends,
}

/// Both slots busy: a release on this runtime (answered after 1.5 s) and an
/// acquire from a thread with its own current-thread runtime (answered after
/// 0.4 s, first); then an acquire queued on this runtime. Its outcome within
/// 8 s, what the other two got, and the requests the fake engine saw.
async fn acquire_queued_beside_another_runtime(
    other: OtherRuntime,
) -> (Result<Result<eslock::Result<AcquireOutcome>, tokio::task::JoinError>, tokio::time::error::Elapsed>, String, Vec<String>) {
    let fake = Fake::start(handler(|id, update| {
        let (status, reply) = update_outcome(update);
        match id {
            "slow" => Act::After(Duration::from_millis(1500), status, reply),
            "other-runtime" => Act::After(Duration::from_millis(400), status, reply),
            _ => Act::Now(status, reply),
        }
    }))
    .await;
    let store = store(&fake.url, Duration::from_secs(5));
    let slow = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.release(&LockId::new("slow").unwrap(), "t").await })
    };
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn({
        let store = Arc::clone(&store);
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let outcome = runtime.block_on(store.acquire(&request("other-runtime", Duration::from_secs(30))));
            if let OtherRuntime::StaysIdle = other {
                let _ = exit_rx.recv_timeout(Duration::from_secs(60));
            }
            drop(runtime);
            outcome.is_ok()
        }
    });
    wait_for("both writes on their way", || fake.count("_update/slow") + fake.count("_update/other-runtime") >= 2).await;
    // Queued: both slots are busy.
    let victim = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.acquire(&request("victim", Duration::from_secs(30))).await })
    };
    let outcome = tokio::time::timeout(Duration::from_secs(8), victim).await;
    let slow_done = slow.await;
    let _ = exit_tx.send(());
    let other_done = thread.join();
    (outcome, format!("the other runtime's acquire: {other_done:?}, the slow release: {slow_done:?}"), fake.lines())
}

/// Liveness ("nothing hangs"): one store used from two runtimes. A write
/// of a current-thread runtime whose `block_on` returns at once after it
/// (a sync wrapper, a per-thread runtime) must not leave a write queued by a
/// caller on another, healthy runtime waiting: every write is sent by its
/// own caller's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_from_one_runtime_does_not_hang_on_another_idle_runtime() {
    let (outcome, others, requests) = acquire_queued_beside_another_runtime(OtherRuntime::StaysIdle).await;
    assert!(
        matches!(outcome, Ok(Ok(Ok(AcquireOutcome::Acquired(_))))),
        "an acquire queued on a healthy runtime got no answer in 8 s ({others}); requests: {requests:?}"
    );
}

/// Robustness: a runtime that ends right after its write (one
/// `#[tokio::test]` of many sharing a static manager; a per-call runtime)
/// does not fail writes queued by callers on other, healthy runtimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_from_one_runtime_does_not_fail_because_another_runtime_ended() {
    let (outcome, others, requests) = acquire_queued_beside_another_runtime(OtherRuntime::Ends).await;
    assert!(
        matches!(outcome, Ok(Ok(Ok(AcquireOutcome::Acquired(_))))),
        "an acquire queued on a healthy runtime failed because another runtime ended: {outcome:?} ({others}); requests: {requests:?}"
    );
}

/// Bad replies: a `_bulk` reply whose items are for other ids (here: in
/// reverse order) is never read as this write's reply (which would report
/// another lock's holder, and neither use nor abandon our own grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_items_for_other_ids_are_never_read_as_this_writes_reply() {
    let fake = Fake::start(Arc::new(|path: &str, body: &str| {
        if path.contains("/_bulk") {
            let mut items: Vec<Value> = bulk_writes(body)
                .into_iter()
                .map(|(id, update)| {
                    let (status, reply) = update_outcome(&update);
                    item(&id, status, reply)
                })
                .collect();
            items.reverse();
            return bulk_reply(items);
        }
        let update: Value = serde_json::from_str(body).unwrap();
        let (status, reply) = update_outcome(&update);
        // The busy writes end one at a time: the first frees the slot that
        // sends x and y together.
        match update_id(path) {
            Some("busy-a") => Act::After(Duration::from_millis(400), status, reply),
            Some("busy-b") => Act::After(Duration::from_millis(3000), status, reply),
            _ => Act::Now(status, reply),
        }
    }))
    .await;
    let store = store(&fake.url, Duration::from_secs(5));
    for id in ["busy-a", "busy-b"] {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.acquire(&request(id, Duration::from_secs(30))).await });
    }
    wait_for("both busy writes on their way", || fake.count("_update/busy") >= 2).await;
    let ttl = Duration::from_secs(30);
    let (x, y) = (request("x", ttl), request("y", ttl));
    let (first, second) = tokio::join!(store.acquire(&x), store.acquire(&y));
    assert!(fake.count("/_bulk") >= 1, "no batch: {:?}", fake.lines());
    // Each reads its own lock id's outcome (the leader: a typed error; the
    // other: sent again alone), never the other's.
    for (id, outcome) in [("x", first), ("y", second)] {
        match outcome {
            Ok(AcquireOutcome::Acquired(info)) => assert_eq!(info.lock_id.as_str(), id),
            Err(eslock::Error::Backend(_)) => {}
            other => panic!("{id}: a bulk item for another id was read as this acquire's reply: {other:?}"),
        }
    }
}

/// Robustness (memory, stale writes): writes whose callers gave up while
/// queued (300 acquires with a 1 ms timeout during a stall) leave the queue
/// unsent; their callers' abandon covers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_whose_callers_gave_up_are_not_sent() {
    let fake = Fake::start(handler(|id, update| {
        let (status, reply) = update_outcome(update);
        if id.starts_with("busy") { Act::After(Duration::from_millis(1000), status, reply) } else { Act::Now(status, reply) }
    }))
    .await;
    let store = store(&fake.url, Duration::from_secs(5));
    for id in ["busy-a", "busy-b"] {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.acquire(&request(id, Duration::from_secs(30))).await });
    }
    wait_for("both busy writes on their way", || fake.count("_update/busy") >= 2).await;
    for _ in 0..300 {
        let _ = tokio::time::timeout(Duration::from_millis(1), store.acquire(&request("retried", Duration::from_secs(30)))).await;
    }
    // Past the busy writes' replies: whatever was still queued went out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bulk_lines: usize = fake
        .lines()
        .iter()
        .filter(|line| line.contains("/_bulk"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(bulk_lines / 2, 0, "acquires whose callers had given up were sent anyway: {:?}", fake.lines());
}

/// Two writes a node never answers hold both slots.
async fn busy_slots(fake: &Fake, store: &Arc<ElasticsearchStore>) {
    for id in ["busy-a", "busy-b"] {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.acquire(&request(id, Duration::from_secs(30))).await });
    }
    wait_for("both busy writes on their way", || fake.count("_update/busy") >= 2).await;
}

/// The `_bulk` requests the fake engine saw, as their numbers of writes.
fn bulk_sizes(fake: &Fake) -> Vec<usize> {
    let lines = fake.lines();
    let bulks = lines.iter().filter(|line| line.contains("/_bulk"));
    bulks.map(|line| line.rsplit(' ').next().unwrap().parse::<usize>().unwrap() / 2).collect()
}

/// Speed: while both slots wait on writes the engine is slow to answer, a
/// queue that makes a full batch (4 writes) goes out at once as one `_bulk`
/// request, its writes in the order they came: it neither waits for a slot
/// nor for its writers' patience (after which each would go alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_goes_out_without_waiting_for_a_slot() {
    let answer = handler(|id, update| {
        if id.starts_with("busy") {
            Act::Never
        } else {
            let (status, reply) = update_outcome(update);
            Act::Now(status, reply)
        }
    });
    // The lock ids of each `_bulk` request, in its order.
    let batches = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let fake = Fake::start(Arc::new({
        let batches = Arc::clone(&batches);
        move |path: &str, body: &str| {
            if path.contains("/_bulk") {
                batches.lock().unwrap().push(bulk_writes(body).into_iter().map(|(id, _)| id).collect());
            }
            answer(path, body)
        }
    }))
    .await;
    let store = store(&fake.url, Duration::from_secs(5));
    busy_slots(&fake, &store).await;
    let requests: Vec<AcquireRequest> = (0..4).map(|i| request(&format!("q{i}"), Duration::from_secs(30))).collect();
    // Polled in turn: three queue, and the fourth makes the batch.
    let outcomes = futures::future::join_all(requests.iter().map(|request| store.acquire(request))).await;
    for (request, outcome) in requests.iter().zip(outcomes) {
        assert!(matches!(outcome, Ok(AcquireOutcome::Acquired(_))), "{}: {outcome:?}", request.lock_id);
    }
    assert_eq!(*batches.lock().unwrap(), [["q0", "q1", "q2", "q3"]], "requests: {:?}", fake.lines());
    assert_eq!(fake.count("_update/q"), 0, "a write went alone: {:?}", fake.lines());
}

/// Bounded load: full batches take at most two more slots. With all four
/// taken (none ever answered), further writes queue, and only their
/// patience sends them, each alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_batches_take_at_most_two_more_slots() {
    let fake = Fake::start(Arc::new(|_: &str, _: &str| Act::Never)).await;
    let store = store(&fake.url, Duration::from_secs(5));
    busy_slots(&fake, &store).await;
    for i in 0..12 {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.acquire(&request(&format!("q{i}"), Duration::from_secs(30))).await });
    }
    let sent = || bulk_sizes(&fake).iter().sum::<usize>() + fake.count("_update/q");
    wait_for("every write went out, the last ones alone", || sent() >= 12).await;
    // Two, unless a stalled machine let a queued writer's patience run out
    // before its batch was full; never three.
    let batches = bulk_sizes(&fake);
    assert!((1..=2).contains(&batches.len()), "{batches:?}; requests: {:?}", fake.lines());
}
