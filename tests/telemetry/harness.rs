//! A small harness: the cinemo binary as a child process, kinesalite (from
//! `tests/common/kinesalite.rs`), a switchable TCP proxy and a tiny HTTP/1.1
//! server for fakes. Every server listens on 127.0.0.1 and is stopped by its
//! Drop guard.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut cond: F) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

pub use crate::common::Cinemo;
pub use crate::common::kinesalite::*;

/// `cinemo --mode <mode>` on the common test base (listeners on port 0,
/// SQLite in a temp dir, OTLP off unless `env` says otherwise), with static
/// AWS credentials for kinesalite and the fakes; returns once it is ready.
pub async fn spawn(mode: &'static str, env: &[(&str, String)]) -> Cinemo {
    crate::common::cinemo(mode)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env)
        .ready()
        .await
}

/// What the proxy does with new connections.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ProxyMode {
    Forward = 0,
    /// Accept and close at once (a connection reset for the client).
    Refuse = 1,
    /// Accept and never answer.
    Blackhole = 2,
}

/// A TCP proxy in front of `target`, switchable at run time.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Connections accepted so far in each mode (indexed by `ProxyMode`).
    accepted: Arc<[AtomicUsize; 3]>,
    task: tokio::task::JoinHandle<()>,
    /// Forwarded connections; cut when Kinesis "goes away", or the SDK's
    /// pooled keep-alive connections would carry on as if nothing happened.
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let mode = Arc::new(AtomicU8::new(ProxyMode::Forward as u8));
        let m = mode.clone();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let c = conns.clone();
        let accepted: Arc<[AtomicUsize; 3]> = Arc::default();
        let a = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mode = m.load(Ordering::SeqCst);
                a[usize::from(mode)].fetch_add(1, Ordering::SeqCst);
                match mode {
                    0 => {
                        let conn = tokio::spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                        c.lock().unwrap().push(conn);
                    }
                    1 => drop(inbound),
                    _ => held.push(inbound),
                }
            }
        });
        Proxy {
            addr,
            mode,
            accepted,
            task,
            conns,
        }
    }

    /// Connections the proxy has accepted while in `mode`.
    pub fn accepted(&self, mode: ProxyMode) -> usize {
        self.accepted[mode as usize].load(Ordering::SeqCst)
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if mode != ProxyMode::Forward {
            for conn in self.conns.lock().unwrap().drain(..) {
                conn.abort();
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

/// One request as the fake servers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// How long the server waits before answering (a slow endpoint).
    pub delay: Duration,
}

/// A fake Kinesis's answer to a `PutRecords` call of `req`: every record
/// written.
pub fn put_records_all_written(req: &Request) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let n = body["Records"].as_array().map_or(0, Vec::len);
    let results: Vec<_> = (1..=n)
        .map(|i| serde_json::json!({"SequenceNumber": i.to_string(), "ShardId": "shardId-000000000000"}))
        .collect();
    Response {
        status: 200,
        content_type: "application/x-amz-json-1.1",
        body: serde_json::to_vec(&serde_json::json!({"FailedRecordCount": 0, "Records": results}))
            .unwrap(),
        delay: Duration::ZERO,
    }
}

type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) for fakes:
/// enough for the AWS SDK and the OTLP exporter, nothing more.
pub struct FakeServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(
        handler: impl Fn(Request) -> Response + Send + Sync + 'static,
    ) -> FakeServer {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake bind");
        let addr = listener.local_addr().expect("fake addr");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(stream, handler).await;
                });
            }
        });
        FakeServer { addr, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    handler: Handler,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let response = handler(Request {
            method,
            path,
            headers,
            body,
        });
        tokio::time::sleep(response.delay).await;
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
            response.status,
            response.content_type,
            response.body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&response.body).await?;
    }
}

/// `POST /api/customers` (name "Ada", `X-Trace` when given): the status
/// and the new id (empty when there is none).
pub async fn create(client: &reqwest::Client, base: &str, trace: Option<&str>) -> (u16, String) {
    let mut req = client
        .post(format!("{base}/api/customers"))
        .json(&serde_json::json!({"name": "Ada"}));
    if let Some(t) = trace {
        req = req.header("X-Trace", t);
    }
    let r = req.send().await.expect("create");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        body["customerId"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `GET /api/customers/{id}` with `headers`: the status.
pub async fn read(client: &reqwest::Client, base: &str, id: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = client.get(format!("{base}/api/customers/{id}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("read").status().as_u16()
}
