//! kinesalite, a local Kinesis, for the suites that read or write a
//! stream, and an aws-sdk Kinesis client for the tests' own setup and reads.
//! Every kinesalite listens on 127.0.0.1 and is stopped by its Drop guard.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Fails the test when kinesalite is not installed: for suites that have
/// nothing to test without it.
pub fn kinesalite_or_fail() -> PathBuf {
    kinesalite_dir().unwrap_or_else(|why| panic!("{why}"))
}

pub struct Kinesalite {
    child: Child,
    pub addr: SocketAddr,
    /// `OPERATION ERROR_CODE` of each call failed on purpose.
    faults: Arc<Mutex<Vec<String>>>,
}

impl Kinesalite {
    /// Starts kinesalite in memory on a port the OS picks, through
    /// `tests/common/kinesalite.js` (which also mends its one difference
    /// from Kinesis that the tests meet); it prints the port once it listens.
    pub fn start(node_modules: &Path) -> Kinesalite {
        Self::start_with_faults(node_modules, &[])
    }

    /// As [`Kinesalite::start`], failing calls as `faults` say
    /// (`OPERATION:ERROR_CODE:EVERY[:TIMES]`, see `tests/common/kinesalite.js`).
    pub fn start_with_faults(node_modules: &Path, faults: &[&str]) -> Kinesalite {
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/kinesalite.js");
        let mut cmd = Command::new("node");
        cmd.arg(launcher)
            .arg("--modules")
            .arg(node_modules)
            .args(["--port", "0"]);
        for fault in faults {
            cmd.args(["--fail", fault]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting node for kinesalite");
        let mut out = BufReader::new(child.stdout.take().expect("kinesalite stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("kinesalite output");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("kinesalite did not start: {line:?}"));
        // Then one line per failure it made.
        let faults: Arc<Mutex<Vec<String>>> = Arc::default();
        let made = faults.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Some(fault) = line.strip_prefix("fault ") {
                    made.lock().unwrap().push(fault.to_owned());
                }
            }
        });
        Kinesalite {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            faults,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls of `operation` failed with `code` on purpose so far (see
    /// [`Kinesalite::start_with_faults`]).
    pub fn faults_made(&self, operation: &str, code: &str) -> usize {
        let fault = format!("{operation} {code}");
        self.faults
            .lock()
            .unwrap()
            .iter()
            .filter(|f| **f == fault)
            .count()
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
