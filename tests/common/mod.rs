//! The test harness: runs the real `cinemo` binary as a child process, with
//! listeners on port 0, and learns the bound addresses from its JSON logs
//! (no port races, no sleeping until it is up).
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod kinesalite;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cinemo::telemetry::names::{LOG_INTERNAL_LISTENING, LOG_PUBLIC_LISTENING, LOG_READY};

pub const BIN: &str = env!("CARGO_BIN_EXE_cinemo");

/// How long a child may take to say it is ready. Generous: debug builds on a
/// loaded 2-core CI machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Builder {
    mode: &'static str,
    envs: Vec<(String, String)>,
    args: Vec<String>,
    dir: Option<Arc<tempfile::TempDir>>,
}

/// A running cinemo process; killed when dropped.
pub struct Cinemo {
    child: Option<Child>,
    pub public: Option<String>,
    pub internal: Option<String>,
    pub dir: Arc<tempfile::TempDir>,
    lines: Arc<Mutex<Vec<String>>>,
    new_line: mpsc::Receiver<String>,
    /// The threads copying stdout and stderr into `lines`; joined once the
    /// process has exited, so its last lines are never missed.
    readers: Vec<std::thread::JoinHandle<()>>,
}

pub fn cinemo(mode: &'static str) -> Builder {
    Builder {
        mode,
        envs: Vec::new(),
        args: Vec::new(),
        dir: None,
    }
}

impl Builder {
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    pub fn envs<K: AsRef<str>, V: AsRef<str>>(mut self, envs: &[(K, V)]) -> Self {
        for (k, v) in envs {
            self.envs
                .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        }
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Shares a working directory (and so the default SQLite file) with
    /// another process.
    pub fn dir(mut self, dir: Arc<tempfile::TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The command with the hermetic environment every test starts from: an
    /// empty config dir, listeners on port 0, SQLite in a temp dir, no
    /// exporters, JSON logs.
    pub fn command(&self) -> (Command, Arc<tempfile::TempDir>) {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CINEMO_CONFIG_DIR", &config_dir)
            .env("CINEMO__PUBLIC__LISTEN", "127.0.0.1:0")
            .env("CINEMO__INTERNAL__LISTEN", "127.0.0.1:0")
            .env("CINEMO__OTLP__ENABLED", "false")
            .env("CINEMO__LOG__FORMAT", "json")
            .env("CINEMO__LOG__LEVEL", "info")
            .env("CINEMO__SHUTDOWN__TIMEOUT_SECS", "10")
            .env("CINEMO__HTTP__WORKERS", "2")
            .arg("--mode")
            .arg(self.mode);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.args(&self.args);
        (cmd, dir)
    }

    /// Starts the process without waiting for it: for a start-up that is
    /// meant to fail (see [`Cinemo::wait_exit`]), or to wait later with
    /// [`Cinemo::wait_ready`].
    pub fn start(self) -> Cinemo {
        let (mut cmd, dir) = self.command();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the cinemo binary");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let readers = [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ]
        .into_iter()
        .map(|stream| {
            let lines = lines.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("log lock").push(line.clone());
                    let _ = tx.send(line);
                }
            })
        })
        .collect();
        Cinemo {
            child: Some(child),
            public: None,
            internal: None,
            dir,
            lines,
            new_line: rx,
            readers,
        }
    }

    /// Starts the process and returns once it logged `LOG_READY`,
    /// with the addresses its listeners bound (they listen on port 0).
    pub fn spawn(self) -> Cinemo {
        let mut app = self.start();
        app.wait_ready();
        app
    }

    /// [`Builder::spawn`] for async tests whose fakes run on the test's own
    /// runtime: the wait for the ready line does not block a runtime thread.
    pub async fn ready(self) -> Cinemo {
        tokio::task::spawn_blocking(move || self.spawn())
            .await
            .expect("the start-up wait panicked")
    }
}

fn listening(line: &str, message: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != message {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}

impl Cinemo {
    /// Reads the log until `LOG_READY`, noting the listeners'
    /// addresses on the way; panics with the log if the process exits first
    /// or is not ready within the start-up timeout.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let line = match self
                .new_line
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(5));
                    panic!(
                        "cinemo exited ({status}) before it was ready:\n{}",
                        self.logs()
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "cinemo was not ready within {START_TIMEOUT:?}:\n{}",
                    self.logs()
                ),
            };
            if let Some(addr) = listening(&line, LOG_PUBLIC_LISTENING) {
                self.public = Some(format!("http://{addr}"));
            }
            if let Some(addr) = listening(&line, LOG_INTERNAL_LISTENING) {
                self.internal = Some(format!("http://{addr}"));
            }
            if line.contains(LOG_READY) {
                return;
            }
        }
    }

    /// The public tier's base URL, always `http://`: a suite that turns
    /// TLS on builds its `https://` URLs from `public_port()` /
    /// `internal_port()` (tests/security).
    pub fn public(&self) -> &str {
        self.public.as_deref().expect("no public tier in this mode")
    }

    pub fn internal(&self) -> &str {
        self.internal
            .as_deref()
            .expect("no internal tier in this mode")
    }

    /// The public tier's base URL, or the internal one's in `--mode internal`.
    pub fn url(&self) -> &str {
        self.public
            .as_deref()
            .or(self.internal.as_deref())
            .expect("not ready yet")
    }

    pub fn public_addr(&self) -> SocketAddr {
        addr_of(self.public())
    }

    pub fn public_port(&self) -> u16 {
        self.public_addr().port()
    }

    pub fn internal_port(&self) -> u16 {
        addr_of(self.internal()).port()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// The JSON log lines whose `message` is `message`.
    pub fn log_events(&self, message: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// Still the same process: not exited (and so not restarted).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    pub fn assert_running(&mut self) {
        assert!(self.is_running(), "cinemo exited:\n{}", self.logs());
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The exit status once the process has exited, after the last of its
    /// output has been read.
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("try_wait")?;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Some(status)
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("cinemo did not exit within {timeout:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then asserts a clean exit (the drain and the final flushes)
    /// within 30 s. Async, so fakes on the test's runtime keep answering
    /// while cinemo shuts down.
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            if Instant::now() > deadline {
                panic!("cinemo did not stop within 30 s:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success(),
            "cinemo exited with {status}:\n{}",
            self.logs()
        );
    }
}

pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("addr")
}

impl Drop for Cinemo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary to completion (for `config`, `healthcheck`, `--help`...).
pub fn run(args: &[&str], envs: &[(&str, &str)], dir: &Path) -> (ExitStatus, String, String) {
    let output = Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CINEMO_CONFIG_DIR", dir.join("config"))
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .expect("cannot run the cinemo binary");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A response reduced to what a user sees.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

pub async fn send(req: reqwest::RequestBuilder) -> Seen {
    seen(req.send().await.expect("request failed")).await
}

/// What a user sees of an answer already received (for a test that also
/// reads one of its headers with `header`).
pub async fn seen(response: reqwest::Response) -> Seen {
    let status = response.status().as_u16();
    let content_type = header(&response, "content-type");
    let body = response.text().await.expect("body");
    Seen {
        status,
        content_type,
        body,
    }
}

/// A header's value as text, "" when absent or not visible ASCII.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A loopback address nothing listens on.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

pub fn tmp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Holds SQLite's write lock on `db` from another process's point of view,
/// as a stuck writer would, until the returned connection runs `ROLLBACK`
/// (or is dropped).
pub async fn lock_sqlite(db: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut locker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the SQLite file");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("take the write lock");
    locker
}

/// A stand-in for the internal tier's network load balancer in the moment
/// after a target died and before its health checks failed: new
/// connections meet the dead target. Until [`Balancer::open`] it refuses
/// every connection (a closed port's reset, as the NLB passes it on); after
/// that it cuts the first connections it accepts, alternately with a reset
/// and a clean close, and forwards every later one to the live target.
pub struct Balancer {
    socket: socket2::Socket,
    pub addr: SocketAddr,
    target: SocketAddr,
}

impl Balancer {
    /// Bound to a loopback port but not listening yet: connections to
    /// `addr` are refused.
    pub fn refusing(target: SocketAddr) -> Balancer {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind the balancer");
        let addr = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("an IP address");
        Balancer {
            socket,
            addr,
            target,
        }
    }

    /// Starts accepting at once; the first connection reaches a target
    /// that dies with the first request on it: the request is read, then
    /// the connection is reset without an answer. Every later connection
    /// is forwarded to the live target.
    pub fn open_dying_under_the_first_request(self) {
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            self.socket.listen(128).expect("listen");
            self.socket.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(self.socket.into()).expect("listener");
            let Ok((mut first, _)) = listener.accept().await else {
                return;
            };
            // The preface, settings and the request's headers (HTTP/2), or
            // the request (HTTP/1.1): whatever arrives until it pauses.
            let mut buf = [0u8; 65536];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), first.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
            }
            let _ = socket2::SockRef::from(&first).set_linger(Some(Duration::ZERO));
            drop(first);
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = self.target;
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }

    /// Starts accepting after `delay`, cutting the first `cut`
    /// connections.
    pub fn open(self, delay: Duration, cut: u32) {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            self.socket.listen(128).expect("listen");
            self.socket.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(self.socket.into()).expect("listener");
            for n in 0u32.. {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                if n < cut {
                    if n % 2 == 0 {
                        // SO_LINGER 0: the close sends a reset.
                        let _ = socket2::SockRef::from(&inbound).set_linger(Some(Duration::ZERO));
                    }
                    drop(inbound);
                } else {
                    let target = self.target;
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        });
    }
}
