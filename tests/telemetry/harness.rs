//! A small harness: the cinemo binary as a child process, kinesalite, a
//! switchable TCP proxy and a tiny HTTP/1.1 server for fakes. Every server
//! listens on 127.0.0.1 and is stopped by its Drop guard.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

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

/// One cinemo process.
pub struct Cinemo {
    child: Option<Child>,
    pub public: Option<String>,
    pub internal: Option<String>,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Cinemo {
    /// Starts `cinemo --mode <mode>` with `env` on top of a test base
    /// (free ports, SQLite in a temp dir, OTLP off unless `env` says
    /// otherwise) and waits until `/api/health/live` answers.
    pub async fn spawn(mode: &str, env: &[(&str, String)]) -> Cinemo {
        let dir = tempfile::tempdir().expect("temp dir");
        let public_port = free_port();
        let internal_port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cinemo"));
        cmd.arg("--mode")
            .arg(mode)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("CINEMO_ENV")
            .env(
                "CINEMO_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("CINEMO__PUBLIC__LISTEN", format!("127.0.0.1:{public_port}"))
            .env(
                "CINEMO__INTERNAL__LISTEN",
                format!("127.0.0.1:{internal_port}"),
            )
            .env(
                "CINEMO__STORAGE__URL",
                format!("sqlite://{}/cinemo.db", dir.path().display()),
            )
            .env("CINEMO__OTLP__ENABLED", "false")
            .env("CINEMO__HTTP__WORKERS", "2")
            .env("CINEMO__LOG__LEVEL", "info")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning cinemo");
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let public = (mode != "internal").then(|| format!("http://127.0.0.1:{public_port}"));
        let internal = (mode != "public").then(|| format!("http://127.0.0.1:{internal_port}"));
        let mut app = Cinemo {
            child: Some(child),
            public,
            internal,
            lines,
            _dir: dir,
        };
        let probe = app.public.clone().or(app.internal.clone()).unwrap();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{probe}/api/health/live")).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Some(Ok(Some(status))) = app.child.as_mut().map(|c| c.try_wait()) {
                panic!("cinemo exited before it was ready: {status}\n{}", app.log());
            }
            assert!(
                Instant::now() < deadline,
                "cinemo did not become ready:\n{}",
                app.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        app
    }

    pub fn url(&self) -> &str {
        self.public.as_deref().or(self.internal.as_deref()).unwrap()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The JSON log lines whose `message` is `message`.
    pub fn log_events(&self, message: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// SIGTERM, then waits for a clean exit (the drain and the flushes).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "cinemo exited with {status}:\n{}",
                        self.log()
                    );
                    // Let the reader thread take the last lines.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(25)).await
                }
                _ => {
                    let _ = child.kill();
                    panic!("cinemo did not stop within 30 s:\n{}", self.log());
                }
            }
        }
    }
}

impl Drop for Cinemo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where kinesalite is installed, or why the test must skip.
pub fn kinesalite_dir() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("CINEMO_NODE_MODULES") {
        candidates.push(PathBuf::from(dir));
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/cinemo/node/node_modules"));
    }
    for dir in &candidates {
        if dir.join("kinesalite").is_dir() {
            return Ok(dir.clone());
        }
    }
    Err(format!(
        "kinesalite not found in {candidates:?} (run .ci/test, or ensure_node_tools from .ci/lib.sh)"
    ))
}

/// Skips (prints `SKIPPED`) outside CI, fails in CI.
pub fn need_kinesalite() -> Option<PathBuf> {
    match kinesalite_dir() {
        Ok(dir) => Some(dir),
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

pub struct Kinesalite {
    child: Child,
    pub addr: SocketAddr,
}

impl Kinesalite {
    pub fn start(node_modules: &std::path::Path) -> Kinesalite {
        let port = free_port();
        let script = format!(
            "require({:?})({{createStreamMs: 50}}).listen({port}, '127.0.0.1', function (e) {{ if (e) throw e; console.log('ready') }})",
            node_modules.join("kinesalite").display().to_string()
        );
        let mut child = Command::new("node")
            .arg("-e")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting node for kinesalite");
        let out = child.stdout.take().expect("kinesalite stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("kinesalite output");
        assert_eq!(line.trim(), "ready", "kinesalite did not start");
        Kinesalite {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An aws-sdk Kinesis client for the test's own reads and setup.
pub async fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    let creds = aws_sdk_kinesis::config::Credentials::new("testing", "testing", None, None, "test");
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    for _ in 0..100 {
        let d = client
            .describe_stream()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStream");
        if d.stream_description().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {name} did not become ACTIVE");
}

/// Every record's data in the stream (all shards, from the start).
pub async fn read_all(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator");
        let mut iterator = it.shard_iterator().map(str::to_owned);
        while let Some(current) = iterator {
            let page = client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("GetRecords");
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                out.push(String::from_utf8(r.data().as_ref().to_vec()).expect("UTF-8 record"));
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    out
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
