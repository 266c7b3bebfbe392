//! The security suite's helpers over the common harness (tests/common):
//! cinemo as a child process, stopped when the guard drops.

use std::path::Path;
use std::time::Duration;

pub use crate::common::Cinemo;

/// `cinemo --mode MODE` on the common test base (listeners on port 0, its
/// own temporary directory and SQLite file, OTLP off), `env` layered over
/// it; returns once the process logged that it is ready.
pub fn spawn(mode: &'static str, env: &[(&str, String)]) -> Cinemo {
    crate::common::cinemo(mode).envs(env).spawn()
}

/// The same, without waiting: for start-ups that are meant to fail.
pub fn start(mode: &'static str, env: &[(&str, String)]) -> Cinemo {
    crate::common::cinemo(mode).envs(env).start()
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
