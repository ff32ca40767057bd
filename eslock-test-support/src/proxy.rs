//! A TCP proxy in front of the search engine that injects network faults:
//! slow or withheld replies, a partition, and connection resets. The mode can
//! change at any time and applies to open connections too, chunk by chunk.
//!
//! ```no_run
//! # async fn demo() {
//! use eslock_test_support::proxy::{FaultProxy, Mode};
//! let proxy = FaultProxy::start("http://127.0.0.1:9200").await;
//! let client = eslock_test_support::client_for(proxy.url());
//! proxy.set_mode(Mode::HoldReplies); // the engine executes requests, the client hears nothing
//! // ...
//! proxy.set_mode(Mode::Pass);        // the held replies arrive, in order
//! # }
//! ```

use std::future::pending;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What the proxy does with traffic; see [`FaultProxy::set_mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything at once.
    Pass,
    /// Forward requests at once (the engine executes them); deliver each chunk
    /// of reply this long after the engine sent it.
    DelayReplies(Duration),
    /// Forward requests at once (the engine executes them) but keep the
    /// replies; they are delivered in order once the mode is `Pass` or
    /// `DelayReplies` again, or discarded by [`FaultProxy::drop_held`].
    HoldReplies,
    /// Forward nothing in either direction, as in a network partition:
    /// connections stay open (new ones are accepted). What was sent waits and
    /// flows when the mode changes, as TCP retransmits it once a partition
    /// heals: a request whose client gave up meanwhile still executes then.
    /// To lose it instead, switch to `Reset` before leaving the blackhole.
    Blackhole,
    /// Close every connection, open or new, with a TCP reset.
    Reset,
}

impl Mode {
    fn forwards_requests(self) -> bool {
        matches!(self, Mode::Pass | Mode::DelayReplies(_) | Mode::HoldReplies)
    }
}

/// What every connection watches.
#[derive(Clone, Copy)]
struct Control {
    mode: Mode,
    /// Bumped by `drop_held`: a reply to a request sent before the bump is
    /// discarded.
    drops: u64,
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    bytes_to_engine: AtomicU64,
    requests: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
}

/// A fault-injecting TCP proxy on 127.0.0.1 in front of one engine. Its tasks
/// and connections end when it is dropped.
pub struct FaultProxy {
    url: String,
    control: watch::Sender<Control>,
    stats: Arc<Stats>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in [`Mode::Pass`] in front of the engine at
    /// `upstream_url` (`http://host:port`; the path is ignored). Must be
    /// called inside a Tokio runtime.
    ///
    /// # Panics
    /// When the URL names no host, or no local port can be bound.
    pub async fn start(upstream_url: &str) -> FaultProxy {
        let upstream = upstream_addr(upstream_url)
            .unwrap_or_else(|| panic!("FaultProxy: no host in the engine URL {upstream_url:?}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("FaultProxy: binding 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("FaultProxy: local address"));
        let (control, watcher) = watch::channel(Control { mode: Mode::Pass, drops: 0 });
        let stats = Arc::new(Stats::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, watcher, Arc::clone(&stats)));
        FaultProxy { url, control, stats, accept }
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`, to build a client with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Switches the mode; open connections follow from their next chunk of
    /// data (a reply already being held or delayed follows at once).
    pub fn set_mode(&self, mode: Mode) {
        self.control.send_modify(|control| control.mode = mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.control.borrow().mode
    }

    /// Discards every reply not yet delivered (held, delayed or blackholed)
    /// and resets the client connections it was meant for. The mode stays.
    pub fn drop_held(&self) {
        self.control.send_modify(|control| control.drops += 1);
    }

    /// Client connections accepted so far (including those reset at once).
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// HTTP requests forwarded to the engine so far.
    pub fn requests(&self) -> usize {
        self.lock_requests().len()
    }

    /// The HTTP requests forwarded to the engine so far, in order, as
    /// `"METHOD target"`, e.g. `"POST /locks/_update/a?refresh=true"`.
    pub fn request_lines(&self) -> Vec<String> {
        self.lock_requests().clone()
    }

    /// The `Warning` headers of the engine's replies so far (the engine's
    /// deprecation warnings), as `"Warning: ..."` lines.
    pub fn warnings(&self) -> Vec<String> {
        self.stats.warnings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Bytes forwarded to the engine so far.
    pub fn bytes_to_engine(&self) -> u64 {
        self.stats.bytes_to_engine.load(Ordering::SeqCst)
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.stats.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it ends them all.
        self.accept.abort();
    }
}

/// `host:port` from `http://[user@]host[:port][/path]`.
fn upstream_addr(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://").unwrap_or(("http", url.trim()));
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host_port.is_empty() {
        return None;
    }
    // A port is there unless the text ends in a host name or a [v6] address.
    let has_port = host_port.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    Some(if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:{}", if scheme == "https" { 443 } else { 80 })
    })
}

async fn accept_loop(listener: TcpListener, upstream: String, control: watch::Receiver<Control>, stats: Arc<Stats>) {
    let mut connections = JoinSet::new();
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of file descriptors and the like: try again shortly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        if control.borrow().mode == Mode::Reset {
            reset(client);
            continue;
        }
        connections.spawn(serve(client, upstream.clone(), control.clone(), Arc::clone(&stats)));
        while connections.try_join_next().is_some() {}
    }
}

/// How a connection ends towards the client.
enum End {
    Close,
    Reset,
}

/// A chunk of reply on its way to the client.
struct Reply {
    received: Instant,
    /// `Control::drops` when it was read.
    drops: u64,
    bytes: Vec<u8>,
}

async fn serve(mut client: TcpStream, upstream: String, control: watch::Receiver<Control>, stats: Arc<Stats>) {
    let _ = client.set_nodelay(true);
    let Ok(mut engine) = TcpStream::connect(&upstream).await else {
        return reset(client);
    };
    let _ = engine.set_nodelay(true);
    let (replies_tx, replies_rx) = mpsc::unbounded_channel();
    // `Control::drops` when the last request went to the engine: a reply to
    // it belongs to that time, even if read after a later `drop_held`.
    let forwarded_at = AtomicU64::new(control.borrow().drops);
    let end = {
        // Borrowed halves: unlike owned ones they do not shut the socket down
        // (FIN) when dropped, which would spoil a reset.
        let (from_client, to_client) = client.split();
        let (from_engine, to_engine) = engine.split();
        tokio::select! {
            end = until_reset(control.clone()) => end,
            end = forward_requests(from_client, to_engine, control.clone(), &stats, &forwarded_at) => end,
            end = read_replies(from_engine, replies_tx, control.clone(), &stats, &forwarded_at) => end,
            end = deliver_replies(to_client, replies_rx, control) => end,
        }
    };
    if let End::Reset = end {
        reset(client);
    }
}

/// Closes with RST rather than FIN: SO_LINGER 0 makes close() discard the
/// socket at once.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
}

/// Ends the connection with a reset once the mode is `Reset`.
async fn until_reset(mut control: watch::Receiver<Control>) -> End {
    match control.wait_for(|control| control.mode == Mode::Reset).await {
        Ok(_) => End::Reset,
        Err(_) => End::Close, // the proxy is gone
    }
}

async fn forward_requests(
    mut from_client: ReadHalf<'_>,
    mut to_engine: WriteHalf<'_>,
    mut control: watch::Receiver<Control>,
    stats: &Stats,
    forwarded_at: &AtomicU64,
) -> End {
    let mut buf = vec![0; 64 * 1024];
    let mut requests = CrlfLines::default();
    loop {
        let n = match from_client.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return End::Close,
        };
        // In a blackhole the chunk waits here, and what follows in the socket buffers.
        let drops = match control.wait_for(|control| control.mode.forwards_requests()).await {
            Ok(control) => control.drops,
            Err(_) => return End::Close,
        };
        forwarded_at.store(drops, Ordering::SeqCst);
        if to_engine.write_all(&buf[..n]).await.is_err() {
            return End::Reset;
        }
        stats.bytes_to_engine.fetch_add(n as u64, Ordering::SeqCst);
        requests.feed(&buf[..n], |line| {
            if let Some(request) = request_line(line) {
                stats.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
            }
        });
    }
    // The client half-closed: pass that on, and let the replies finish.
    let _ = to_engine.shutdown().await;
    pending().await
}

async fn read_replies(
    mut from_engine: ReadHalf<'_>,
    replies: mpsc::UnboundedSender<Reply>,
    control: watch::Receiver<Control>,
    stats: &Stats,
    forwarded_at: &AtomicU64,
) -> End {
    let mut buf = vec![0; 64 * 1024];
    let mut headers = CrlfLines::default();
    loop {
        match from_engine.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                headers.feed(&buf[..n], |line| {
                    if line.get(..8).is_some_and(|name| name.eq_ignore_ascii_case("warning:")) {
                        stats.warnings.lock().unwrap_or_else(PoisonError::into_inner).push(line.to_string());
                    }
                });
                // A reply to a request sent before a `drop_held` is dropped
                // too, however soon after it the engine answered.
                let drops = control.borrow().drops.min(forwarded_at.load(Ordering::SeqCst));
                let reply = Reply { received: Instant::now(), drops, bytes: buf[..n].to_vec() };
                if replies.send(reply).is_err() {
                    break;
                }
            }
            Err(_) => return End::Reset,
        }
    }
    // The engine closed: closing the channel lets `deliver_replies` deliver
    // what is left, then end the connection.
    drop(replies);
    pending().await
}

async fn deliver_replies(
    mut to_client: WriteHalf<'_>,
    mut replies: mpsc::UnboundedReceiver<Reply>,
    mut control: watch::Receiver<Control>,
) -> End {
    while let Some(reply) = replies.recv().await {
        loop {
            let Control { mode, drops } = *control.borrow_and_update();
            if drops != reply.drops {
                return End::Reset;
            }
            let due = match mode {
                Mode::Pass => Some(reply.received),
                Mode::DelayReplies(delay) => reply.received.checked_add(delay),
                Mode::HoldReplies | Mode::Blackhole | Mode::Reset => None,
            };
            let wait = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => pending().await,
                }
            };
            // Either the reply is due, or the mode changed: look again.
            tokio::select! {
                () = wait => break,
                changed = control.changed() => if changed.is_err() { return End::Close },
            }
        }
        if to_client.write_all(&reply.bytes).await.is_err() {
            return End::Close;
        }
    }
    End::Close
}

/// Splits an HTTP/1.x byte stream into CRLF-terminated lines: the request
/// and status lines and the headers.
///
/// Request and reply bodies are JSON or NDJSON, which hold no bare CR, so
/// only head lines end in CRLF; and since a body need not end in a line
/// break, the next request line may follow it directly
/// (`...}POST /x HTTP/1.1`), hence [`request_line`] matches the end of a line.
#[derive(Default)]
struct CrlfLines {
    /// The end of the current line, at most `MAX_LINE` bytes.
    line: Vec<u8>,
}

const MAX_LINE: usize = 16 * 1024;
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

impl CrlfLines {
    fn feed(&mut self, bytes: &[u8], mut found: impl FnMut(&str)) {
        for &byte in bytes {
            if byte == b'\n' && self.line.last() == Some(&b'\r') {
                self.line.pop();
                found(&String::from_utf8_lossy(&self.line));
                self.line.clear();
            } else {
                if self.line.len() >= MAX_LINE {
                    self.line.drain(..MAX_LINE / 2);
                }
                self.line.push(byte);
            }
        }
    }
}

/// `"METHOD target"` when `line` ends in a request line
/// (`METHOD SP target SP HTTP/1.x`).
fn request_line(line: &str) -> Option<String> {
    let rest = line.strip_suffix(" HTTP/1.1").or_else(|| line.strip_suffix(" HTTP/1.0"))?;
    let (before, target) = rest.rsplit_once(' ')?;
    let method = METHODS.into_iter().find(|method| before.ends_with(method))?;
    (!target.is_empty()).then(|| format!("{method} {target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_request_lines_across_chunks_and_after_bodies() {
        let stream = b"PUT /i/_doc/1 HTTP/1.1\r\nhost: x\r\ncontent-length: 7\r\n\r\n{\"a\":1}\
                       POST /i/_update/1?refresh=true HTTP/1.1\r\ncontent-length: 0\r\n\r\n\
                       GET / HTTP/1.1\r\n\r\n";
        for chunk_size in [1, 5, stream.len()] {
            let mut lines = CrlfLines::default();
            let mut found = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                lines.feed(chunk, |line| found.extend(request_line(line)));
            }
            assert_eq!(found, ["PUT /i/_doc/1", "POST /i/_update/1?refresh=true", "GET /"], "chunks of {chunk_size}");
        }
    }

    #[test]
    fn parses_upstream_addresses() {
        assert_eq!(upstream_addr("http://127.0.0.1:9200").as_deref(), Some("127.0.0.1:9200"));
        assert_eq!(upstream_addr("http://user:pw@localhost:9200/prefix/").as_deref(), Some("localhost:9200"));
        assert_eq!(upstream_addr("https://search.example").as_deref(), Some("search.example:443"));
        assert_eq!(upstream_addr("http://[::1]:9200").as_deref(), Some("[::1]:9200"));
        assert_eq!(upstream_addr("http://"), None);
    }
}
