//! The reader's harness: kinesalite with a stream (tests/common/kinesalite.rs),
//! cinemo writing frames to it, and `cinemo diagnostics` as a child process
//! whose stdout and stderr lines are collected with the time they came.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::common::Cinemo;
pub use crate::common::kinesalite::*;

pub const STREAM: &str = "cinemo-diagnostics";

/// kinesalite with the stream, and the tests' own client for it.
pub struct Kinesis {
    pub kinesalite: Kinesalite,
    pub client: aws_sdk_kinesis::Client,
}

impl Kinesis {
    pub async fn with_shards(shards: i32) -> Kinesis {
        Self::with_faults(shards, &[]).await
    }

    /// kinesalite failing calls as `faults` say (see Kinesalite::start_with_faults).
    pub async fn with_faults(shards: i32, faults: &[&str]) -> Kinesis {
        let kinesalite = Kinesalite::start_with_faults(&kinesalite_or_fail(), faults);
        let client = kinesis_client(&kinesalite.endpoint()).await;
        if shards > 0 {
            create_stream(&client, STREAM, shards).await;
        }
        Kinesis { kinesalite, client }
    }

    pub fn endpoint(&self) -> String {
        self.kinesalite.endpoint()
    }

    /// Waits until the stream is ACTIVE again (after a reshard).
    pub async fn wait_active(&self) {
        for _ in 0..200 {
            let summary = self
                .client
                .describe_stream_summary()
                .stream_name(STREAM)
                .send()
                .await
                .expect("DescribeStreamSummary");
            if summary
                .stream_description_summary()
                .map(|s| s.stream_status().as_str())
                == Some("ACTIVE")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("stream {STREAM} did not become ACTIVE");
    }

    /// cinemo (`--mode all`) writing its frames to the stream; the sink
    /// sends a partial batch after 50 ms, so frames reach the stream soon
    /// after each request.
    pub async fn writer(&self) -> Cinemo {
        crate::common::cinemo("all")
            .envs(&credentials())
            .envs(&self.kinesis_env())
            .env("CINEMO__KINESIS__FLUSH_INTERVAL_MS", "50")
            .ready()
            .await
    }

    /// The `kinesis.*` settings of both the writer and the reader.
    pub fn kinesis_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CINEMO__KINESIS__ENDPOINT", self.endpoint()),
            ("CINEMO__KINESIS__REGION", "us-east-1".into()),
            ("CINEMO__KINESIS__STREAM_NAME", STREAM.into()),
        ]
    }

    /// The environment of a `cinemo diagnostics` reading this stream.
    pub fn reader_env(&self) -> Vec<(&'static str, String)> {
        let mut env = credentials();
        env.extend(self.kinesis_env());
        env
    }

    /// The data of every record in the stream, shard by shard. Calls that
    /// fail (the faults a test asked kinesalite for) are made again.
    pub async fn records_by_shard(&self) -> Vec<Vec<String>> {
        let shards = self
            .client
            .list_shards()
            .stream_name(STREAM)
            .send()
            .await
            .expect("ListShards");
        let mut out = Vec::new();
        for shard in shards.shards() {
            let page = again(|| async {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_name(STREAM)
                    .shard_id(shard.shard_id())
                    .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                    .send()
                    .await?;
                let iterator = iterator.shard_iterator().unwrap_or_default().to_owned();
                self.client
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                    .map_err(aws_sdk_kinesis::Error::from)
            })
            .await;
            out.push(
                page.records()
                    .iter()
                    .map(|r| String::from_utf8(r.data().as_ref().to_vec()).expect("UTF-8"))
                    .collect(),
            );
        }
        out
    }
}

/// `call`, made again (up to 20 times) while it fails.
async fn again<T, F, Fut>(call: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, aws_sdk_kinesis::Error>>,
{
    let mut last = None;
    for _ in 0..20 {
        match call().await {
            Ok(value) => return value,
            Err(e) => last = Some(e),
        }
    }
    panic!("kinesalite kept failing: {last:?}");
}

/// Static credentials (kinesalite takes any) and no instance metadata.
pub fn credentials() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A running `cinemo diagnostics`.
pub struct Diagnostics {
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<Vec<(Instant, String)>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// What a finished `cinemo diagnostics` printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// From start (or from the signal, for [`Diagnostics::interrupt`]) to exit.
    pub took: Duration,
}

impl Diagnostics {
    /// Starts `cinemo diagnostics ARGS` with only `env` (and an empty config
    /// directory): no profile, no instance role, no stray CINEMO__ variable.
    pub fn start(env: &[(&str, String)], args: &[&str]) -> Diagnostics {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
        let mut child = Command::new(crate::common::BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CINEMO_CONFIG_DIR", dir.path().join("config"))
            // No ~/.aws of the machine's.
            .env("HOME", dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("diagnostics")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start cinemo diagnostics");
        let stdout: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let (o, e) = (stdout.clone(), stderr.clone());
        let readers = vec![
            std::thread::spawn(move || {
                for line in out.lines().map_while(Result::ok) {
                    o.lock().unwrap().push((Instant::now(), line));
                }
            }),
            std::thread::spawn(move || {
                for line in err.lines().map_while(Result::ok) {
                    e.lock().unwrap().push(line);
                }
            }),
        ];
        Diagnostics {
            child,
            started: Instant::now(),
            stdout,
            stderr,
            readers,
            _dir: dir,
        }
    }

    /// Runs it to its end; fails the test if it takes longer than `timeout`.
    pub async fn run(env: &[(&str, String)], args: &[&str], timeout: Duration) -> Finished {
        let d = Diagnostics::start(env, args);
        let started = d.started;
        d.finish(started, timeout).await
    }

    /// Waits for the status line that says it is reading (or following).
    pub async fn wait_reading(&self, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(&format!("stream {STREAM} (")))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "not reading after {timeout:?}; stderr: {:?}",
            self.stderr.lock().unwrap()
        );
    }

    /// When a stdout line containing `text` was printed, waiting up to `timeout`.
    pub async fn wait_stdout(&self, text: &str, timeout: Duration) -> Option<Instant> {
        let end = Instant::now() + timeout;
        loop {
            if let Some((at, _)) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|(_, l)| l.contains(text))
            {
                return Some(*at);
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Ctrl-C (SIGINT), then waits up to `timeout` for it to exit.
    pub async fn interrupt(self, timeout: Duration) -> Finished {
        let status = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -INT failed");
        self.finish(Instant::now(), timeout).await
    }

    async fn finish(mut self, from: Instant, timeout: Duration) -> Finished {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if from.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "cinemo diagnostics did not exit within {timeout:?}; stdout: {:?}; stderr: {:?}",
                    self.stdout_lines(),
                    self.stderr.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = from.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            stdout: self.stdout_lines(),
            stderr: self.stderr.lock().unwrap().clone(),
            took,
        }
    }
}

impl Drop for Diagnostics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A frame as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFrame {
    pub app_id: String,
    pub trace_id: String,
    pub message: String,
    pub timestamp: i64,
}

/// Parses a log frame (a record's data, or a `--json` line).
pub fn log_frame(raw: &str) -> Option<LogFrame> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    if v["type"] != "logs" {
        return None;
    }
    let d = &v["data"];
    Some(LogFrame {
        app_id: d["appId"].as_str()?.to_owned(),
        trace_id: d["traceId"].as_str()?.to_owned(),
        message: d["message"].as_str()?.to_owned(),
        timestamp: d["timestamp"].as_i64()?,
    })
}

/// The log frames of `trace` in `records`, sorted by (appId, message) for
/// comparing sets.
pub fn trace_frames<'a>(
    records: impl IntoIterator<Item = &'a String>,
    trace: &str,
) -> Vec<LogFrame> {
    let mut frames: Vec<LogFrame> = records
        .into_iter()
        .filter_map(|r| log_frame(r))
        .filter(|f| f.trace_id == trace)
        .collect();
    frames.sort();
    frames
}

/// `(appId, message)` pairs, sorted: what a trace says, whatever the order.
pub fn said(frames: &[LogFrame]) -> Vec<(String, String)> {
    let mut said: Vec<_> = frames
        .iter()
        .map(|f| (f.app_id.clone(), f.message.clone()))
        .collect();
    said.sort();
    said
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `POST /api/customers` with `body` and `X-Trace: trace` (none when
/// empty): the status and the new id ("" when none).
pub async fn create(base: &str, trace: &str, body: &str) -> (u16, String) {
    let mut req = crate::common::client()
        .post(format!("{base}/api/customers"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if !trace.is_empty() {
        req = req.header("X-Trace", trace);
    }
    let r = req.send().await.expect("create");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        v["customerId"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `GET /api/customers/{id}` with `X-Trace: trace` (none when empty): the status.
pub async fn read(base: &str, trace: &str, id: &str) -> u16 {
    let mut req = crate::common::client().get(format!("{base}/api/customers/{id}"));
    if !trace.is_empty() {
        req = req.header("X-Trace", trace);
    }
    req.send().await.expect("read").status().as_u16()
}
