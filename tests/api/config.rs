//! Configuration as the binary sees it: layering, rejection, redaction.

use crate::common::{cinemo, run};

#[test]
fn config_prints_the_effective_configuration_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/default.toml"),
        "[shutdown]\ntimeout_secs = 11\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config/edge.toml"),
        "[shutdown]\ntimeout_secs = 12\n",
    )
    .unwrap();
    let (status, out, err) = run(
        &["config", "--mode", "internal"],
        &[
            ("CINEMO_ENV", "edge"),
            (
                "DATABASE_URL",
                "postgres://cinemo:s3cret-pw@db.internal:5432/cinemo",
            ),
        ],
        dir.path(),
    );
    assert!(status.success(), "{err}");
    let shown: toml::Table = toml::from_str(&out).expect("config prints TOML");
    assert_eq!(shown["mode"].as_str(), Some("internal"));
    assert_eq!(
        shown["shutdown"]["timeout_secs"].as_integer(),
        Some(12),
        "edge.toml beats default.toml"
    );
    assert_eq!(shown["storage"]["type"].as_str(), Some("postgres"));
    assert_eq!(
        shown["storage"]["url"].as_str(),
        Some("postgres://cinemo:***@db.internal:5432/cinemo")
    );
    assert!(!out.contains("s3cret"), "a password was printed:\n{out}");
    assert_eq!(shown["internal"]["listen"].as_str(), Some("0.0.0.0:8081"));
}

#[test]
fn an_unknown_key_stops_start_up_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, "[public]\ninternal_ulr = \"http://x\"\n").unwrap();
    let (status, _, err) = run(&["--config", file.to_str().unwrap()], &[], dir.path());
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("public.internal_ulr") && err.contains("mine.toml"),
        "{err}"
    );
}

#[test]
fn a_contradicting_storage_url_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, err) = run(
        &["serve"],
        &[
            ("CINEMO__STORAGE__TYPE", "sqlite"),
            ("CINEMO__STORAGE__URL", "mongodb://u:pw@db"),
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("mongodb URL") && !err.contains(":pw@"),
        "{err}"
    );
}

#[test]
fn the_mode_flag_beats_the_environment() {
    let app = cinemo("internal").env("CINEMO__MODE", "public").spawn();
    assert!(app.internal.is_some() && app.public.is_none());
}

#[test]
fn help_explains_every_flag_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let (status, out, _) = run(&["--help"], &[], dir.path());
    assert!(status.success());
    for word in [
        "--mode",
        "--config",
        "serve",
        "healthcheck",
        "config",
        "smoke",
        "--version",
    ] {
        assert!(out.contains(word), "--help does not mention {word}:\n{out}");
    }
    let (status, out, _) = run(&["--version"], &[], dir.path());
    assert!(status.success());
    assert!(
        out.starts_with(&format!("cinemo {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
}

#[test]
fn healthcheck_exits_0_for_a_live_tier_and_1_otherwise() {
    let app = cinemo("all").spawn();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["healthcheck", app.public()], &[], dir.path());
    assert!(ok.success(), "{err}");
    let dead = format!("http://{}", crate::common::closed_port());
    let (bad, _, err) = run(&["healthcheck", &dead], &[], dir.path());
    assert_eq!(bad.code(), Some(1));
    assert!(err.contains("/api/health/live"), "{err}");
    assert!(
        err.contains("Connection refused"),
        "the cause, not only the URL: {err}"
    );
}

#[test]
fn healthcheck_and_smoke_take_host_and_port_and_refuse_other_schemes_once() {
    let app = cinemo("all").spawn();
    let dir = tempfile::tempdir().unwrap();
    let host_port = app.public().trim_start_matches("http://").to_owned();
    let (ok, _, err) = run(&["healthcheck", &host_port], &[], dir.path());
    assert!(ok.success(), "{host_port}: {err}");
    let (ok, out, err) = run(&["smoke", "--url", &host_port], &[], dir.path());
    assert!(ok.success(), "{out}{err}");
    assert!(
        out.contains(&format!("smoke test against http://{host_port}")),
        "{out}"
    );
    for (args, why) in [
        (
            vec!["healthcheck", "ftp://127.0.0.1:1"],
            "must start with http:// or https://",
        ),
        (
            vec!["smoke", "--url", "ftp://127.0.0.1:1"],
            "must start with http:// or https://",
        ),
        (vec!["healthcheck", "localhost:port"], "invalid port number"),
    ] {
        let (bad, out, err) = run(&args, &[], dir.path());
        assert_eq!(bad.code(), Some(2), "{args:?}: {out}{err}");
        assert_eq!(err.matches(why).count(), 1, "said once: {err}");
        assert!(out.is_empty(), "{out}");
    }
}
