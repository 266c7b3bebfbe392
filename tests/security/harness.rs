//! Spawns `cinemo` as a child process and stops it when the guard drops.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cinemo {
    child: Child,
    pub dir: tempfile::TempDir,
    pub public_port: u16,
    pub internal_port: u16,
}

/// A port nobody listens on right now (the OS picks it; the tiny window
/// before cinemo binds it is acceptable on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free port")
}

impl Cinemo {
    /// Starts `cinemo --mode MODE` with its own temporary working directory
    /// and SQLite file; `env` is layered over the test defaults.
    pub fn start(mode: &str, env: &[(&str, String)]) -> Cinemo {
        let dir = tempfile::tempdir().expect("temp dir");
        let public_port = free_port();
        let internal_port = free_port();
        let log = std::fs::File::create(dir.path().join("cinemo.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cinemo"));
        cmd.args(["--mode", mode])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CINEMO_CONFIG_DIR", dir.path().join("no-config"))
            .env("CINEMO__OTLP__ENABLED", "false")
            .env("CINEMO__LOG__FORMAT", "text")
            .env("CINEMO__LOG__LEVEL", "info")
            .env("CINEMO__HTTP__WORKERS", "2")
            .env("CINEMO__PUBLIC__LISTEN", format!("127.0.0.1:{public_port}"))
            .env(
                "CINEMO__INTERNAL__LISTEN",
                format!("127.0.0.1:{internal_port}"),
            )
            .env(
                "CINEMO__STORAGE__URL",
                format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cinemo");
        Cinemo {
            child,
            dir,
            public_port,
            internal_port,
        }
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port)
    }

    pub fn internal_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.internal_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cinemo.log")).unwrap_or_default()
    }

    /// Polls `base/api/health/live` with `client` until it answers 200;
    /// panics with the server's log if the process exits or 30 s pass.
    pub async fn wait_live(&mut self, client: &reqwest::Client, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "cinemo exited with {status} before serving:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = client.get(format!("{base}/api/health/live")).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{base} not live after 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("cinemo exited with {status}:\n{}", self.log());
        }
    }

    /// Waits for the process to exit on its own (a start-up refusal).
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cinemo still running:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cinemo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write test file");
    path.display().to_string()
}

pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}
