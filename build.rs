//! Bakes the git sha and release channel into the binary
//! (`cinemo --version`, `GET /api/version`, metric resource attributes),
//! and tells the tests whether a real MongoDB is there to test against.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CINEMO_GIT_SHA");
    println!("cargo:rerun-if-env-changed=CINEMO_CHANNEL");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");

    let sha = std::env::var("CINEMO_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let channel = std::env::var("CINEMO_CHANNEL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dev".into());
    if !matches!(channel.as_str(), "dev" | "edge" | "stable") {
        panic!("CINEMO_CHANNEL must be dev, edge or stable, not {channel:?}");
    }
    // The storage tests against a real MongoDB run when its URL is set and
    // are reported as ignored otherwise (tests/storage.rs).
    println!("cargo:rerun-if-env-changed=CINEMO_TEST_MONGODB_URL");
    println!("cargo::rustc-check-cfg=cfg(cinemo_real_mongodb)");
    if std::env::var("CINEMO_TEST_MONGODB_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo:rustc-cfg=cinemo_real_mongodb");
    }
    println!("cargo:rustc-env=CINEMO_GIT_SHA={sha}");
    println!("cargo:rustc-env=CINEMO_CHANNEL={channel}");
}
