//! A local endpoint that records request heads: it shows what a client
//! sends (credentials, headers) where the test engine runs without security.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A local endpoint that answers every request with 401 and an
/// Elasticsearch-style error, and keeps the request heads: it shows what
/// a client sends (the test engine runs without security).
pub struct Recorder {
    /// Where it listens, `http://127.0.0.1:PORT`.
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Starts listening on a free port of 127.0.0.1.
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heads);
        std::thread::spawn(move || {
            for mut socket in listener.incoming().flatten() {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
                log.lock().unwrap().push(text(&request[..end]));
                let body = r#"{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}"#;
                let reply = format!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes());
            }
        });
        Recorder { url, heads }
    }

    /// The `authorization` header of every request so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|head| {
                head.lines()
                    .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("authorization")))
                    .map(|(_, value)| value.trim().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Standard base64 (for expected `Authorization` values).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bytes
        .chunks(3)
        .flat_map(|chunk| {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            (0..4).map(move |i| if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' })
        })
        .collect()
}
