//! A fake search engine on 127.0.0.1 that answers every request with the
//! same hostile reply: broken JSON, a cut-off body, an HTML page, 20 MB, bytes
//! that are not UTF-8, a reply that never comes or trickles in, or a closed
//! connection. It reads each request in full first, so the client sees the
//! reply it is meant to see rather than a reset.
//!
//! The real engine is never replaced by it: it only stands in for what a real
//! engine (or a proxy in front of one) answers when something is broken.
//!
//! ```no_run
//! # async fn demo() {
//! use eslock_test_support::fake::{FakeEngine, Reply};
//! let fake = FakeEngine::start(Reply::html_error_page()).await;
//! let manager = eslock::LockManager::elasticsearch(eslock_test_support::client_for(fake.url()));
//! assert!(manager.setup().await.is_err());
//! assert!(fake.requests() > 0);
//! # }
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the fake engine answers to every request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Complete {
        /// HTTP status.
        status: u16,
        /// The `content-type` header.
        content_type: &'static str,
        /// The body, as sent.
        body: Arc<Vec<u8>>,
    },
    /// Announces `body.len() * 2` bytes, sends `body`, and closes the connection.
    Truncated {
        /// HTTP status.
        status: u16,
        /// What is sent of the announced body.
        body: Arc<Vec<u8>>,
    },
    /// Sends the head at once, then the body one byte per `interval`.
    Trickle {
        /// The body, eventually.
        body: Arc<Vec<u8>>,
        /// Time between two bytes.
        interval: Duration,
    },
    /// Reads the request and never answers; the connection stays open.
    Silent,
    /// Reads the request and closes the connection without a word.
    Close,
}

/// A reply shaped like a successful scripted update of a lock held by
/// `token`, for the replies that break something else than the shape.
fn plausible_update(token: &[u8]) -> Vec<u8> {
    let mut body = br#"{"_index":".eslock-locks-000001","_id":"x","result":"updated","get":{"_source":{"token":""#.to_vec();
    body.extend_from_slice(token);
    body.extend_from_slice(br#"","createdAt":"2030-01-01T00:00:00Z","expiresAt":"2030-01-01T00:00:30Z"}}}"#);
    body
}

impl Reply {
    /// A complete response with `body` as given.
    pub fn raw(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Complete { status, content_type, body: Arc::new(body.into()) }
    }

    /// A complete JSON response (valid JSON, of whatever shape).
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::raw(status, "application/json; charset=UTF-8", value.to_string())
    }

    /// 200 with JSON that breaks off into a syntax error (a trailing comma)
    /// right where a lax reader would have found a granted lock.
    pub fn malformed_json() -> Reply {
        Reply::raw(200, "application/json", r#"{"result": "updated", "get": {"_source": {"token": "t", }}}"#)
    }

    /// 200 announcing twice the body it sends, then the connection closes.
    pub fn truncated_json() -> Reply {
        let mut body = plausible_update(b"t");
        body.truncate(body.len() / 2);
        Reply::Truncated { status: 200, body: Arc::new(body) }
    }

    /// 200 with plain text.
    pub fn not_json() -> Reply {
        Reply::raw(200, "text/plain", "OK")
    }

    /// A proxy's 502 page in HTML. eslock retries 502 a bounded number of
    /// times, so this also shows the retries end.
    pub fn html_error_page() -> Reply {
        Reply::raw(
            502,
            "text/html",
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
    }

    /// 200 with a JSON object of about `bytes` bytes that holds nothing eslock asks for.
    pub fn huge_json(bytes: usize) -> Reply {
        let mut body = Vec::with_capacity(bytes + 16);
        body.extend_from_slice(br#"{"padding":""#);
        body.resize(bytes, b'x');
        body.extend_from_slice(br#""}"#);
        Reply::Complete { status: 200, content_type: "application/json", body: Arc::new(body) }
    }

    /// 200 claiming JSON: a plausible update reply, but the token holds
    /// bytes that are not UTF-8 (Latin-1 and stray continuation bytes), so
    /// it is not JSON at all.
    pub fn non_utf8() -> Reply {
        Reply::raw(200, "application/json", plausible_update(&[b'c', b'a', b'f', 0xE9, 0xFF, 0xFE, 0x80, 0xC3, 0x28]))
    }

    /// 500 with multi-byte UTF-8 text that is not JSON, long enough to be cut
    /// short in the error message; the one-byte lead puts the cuts at 300
    /// and 500 bytes inside a character.
    pub fn multi_byte_text() -> Reply {
        Reply::raw(500, "text/plain; charset=UTF-8", format!("x{}", "锁é🔒".repeat(400)))
    }

    /// 200 with JSON holding multi-byte text where eslock expects its fields.
    pub fn multi_byte_json() -> Reply {
        let text = format!("x{}", "锁é🔒".repeat(400));
        Reply::json(200, json!({ "result": 5, "error": { "type": text, "reason": text }, "锁": text }))
    }

    /// Accepts and reads the request, never answers.
    pub fn never() -> Reply {
        Reply::Silent
    }

    /// A plausible reply, one byte per second.
    pub fn trickle() -> Reply {
        Reply::Trickle { body: Arc::new(plausible_update(b"t")), interval: Duration::from_secs(1) }
    }

    /// Closes the connection once the request is read.
    pub fn close() -> Reply {
        Reply::Close
    }

    /// Whether the reply takes (much) longer than a request timeout.
    pub fn is_slow(&self) -> bool {
        matches!(self, Reply::Silent | Reply::Trickle { .. })
    }
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<String>>,
}

/// The fake engine; its listener and connections close when it is dropped.
pub struct FakeEngine {
    url: String,
    log: Arc<Log>,
    accept: JoinHandle<()>,
}

impl FakeEngine {
    /// Listens on a free port of 127.0.0.1 and answers every request with `reply`.
    pub async fn start(reply: Reply) -> FakeEngine {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let log = Arc::new(Log::default());
        let accept = tokio::spawn(serve(listener, Arc::new(reply), Arc::clone(&log)));
        FakeEngine { url, log, accept }
    }

    /// The URL to give a client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many requests were read.
    pub fn requests(&self) -> usize {
        self.request_lines().len()
    }

    /// The request lines read (`POST /index/_update/id?...`), in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.log.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        // The accept task owns the connections' tasks: aborting it ends them too.
        self.accept.abort();
    }
}

async fn serve(listener: TcpListener, reply: Arc<Reply>, log: Arc<Log>) {
    let mut connections = JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
        connections.spawn(answer(socket, Arc::clone(&reply), Arc::clone(&log)));
    }
}

async fn answer(mut socket: TcpStream, reply: Arc<Reply>, log: Arc<Log>) {
    let Some(request_line) = read_request(&mut socket).await else {
        return;
    };
    log.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request_line);
    // Write errors mean the client gave up (a timeout): nothing to do.
    let _ = match &*reply {
        Reply::Complete { status, content_type, body } => {
            let head = head(*status, content_type, body.len());
            write_all(&mut socket, &[head.as_bytes(), body]).await
        }
        Reply::Truncated { status, body } => {
            let head = head(*status, "application/json", body.len() * 2);
            write_all(&mut socket, &[head.as_bytes(), body]).await
        }
        Reply::Trickle { body, interval } => {
            let head = head(200, "application/json", body.len());
            let mut sent = socket.write_all(head.as_bytes()).await;
            for byte in body.iter() {
                if sent.is_err() {
                    break;
                }
                tokio::time::sleep(*interval).await;
                sent = socket.write_all(&[*byte]).await;
            }
            sent
        }
        Reply::Silent => {
            // Keep the connection open, saying nothing, until the client
            // closes it (or the fake engine is dropped).
            let mut sink = [0u8; 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            Ok(())
        }
        Reply::Close => Ok(()),
    };
    let _ = socket.shutdown().await;
}

fn head(status: u16, content_type: &str, content_length: usize) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {content_length}\r\nconnection: close\r\n\r\n",
        reason_phrase(status)
    )
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Whatever",
    }
}

async fn write_all(socket: &mut TcpStream, parts: &[&[u8]]) -> std::io::Result<()> {
    for part in parts {
        socket.write_all(part).await?;
    }
    socket.flush().await
}

/// Reads one request (head and body, by `content-length` or chunked) and
/// returns its request line; `None` when the client closed first.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_ascii_lowercase())
    };
    let content_length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let complete = |buffer: &[u8]| {
        let body = &buffer[head_end..];
        if chunked { body.ends_with(b"0\r\n\r\n") } else { body.len() >= content_length }
    };
    while !complete(&buffer) {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    Some(head.lines().next().unwrap_or_default().to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
