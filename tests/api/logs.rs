//! What `cinemo` prints: an access log line per request on each tier, the
//! banner once it is ready, and a clear stop on a log level that is none.

use std::time::{Duration, Instant};

use cinemo::telemetry::names::{LOG_ACCESS, LOG_ACCESS_TARGET, LOG_READY};
use serde_json::Value;

use crate::common::{Cinemo, cinemo, client, run, send};

/// Waits until the process has logged `n` events with `message`.
fn wait_for(app: &Cinemo, message: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = app.log_events(message);
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn access_lines(app: &Cinemo, n: usize) -> Vec<Value> {
    let lines = wait_for(app, LOG_ACCESS, n);
    for line in &lines {
        assert_eq!(line["target"], LOG_ACCESS_TARGET, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_access_line_on_each_tier() {
    let app = cinemo("all").ready().await;
    let http = client();
    let created = send(
        http.post(format!("{}/api/customers", app.public()))
            .header("x-trace", "ann-1")
            .json(&serde_json::json!({"name": "Ann"})),
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    // Express routing: the line shows what the client sent.
    let head = http
        .head(format!("{}/API/Customers/not-an-id/", app.public()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 400);

    let lines = access_lines(&app, 3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let find = |tier: &str, method: &str| {
        lines
            .iter()
            .find(|l| l["tier"] == tier && l["method"] == method)
            .unwrap_or_else(|| panic!("no {tier} {method} line in {lines:#?}"))
    };
    let public = find("public", "POST");
    assert_eq!(public["path"], "/api/customers");
    assert_eq!(public["status"], 200);
    assert_eq!(public["trace"], "ann-1");
    assert!(public["duration_ms"].as_f64().unwrap() > 0.0, "{public}");
    assert!(public["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    // The public tier's call to the internal tier carries the token on.
    let internal = find("internal", "POST");
    assert_eq!(internal["path"], "/api/cache");
    assert_eq!(internal["status"], 200);
    assert_eq!(internal["trace"], "ann-1");
    let head = find("public", "HEAD");
    assert_eq!(head["path"], "/API/Customers/not-an-id/");
    assert_eq!(head["status"], 400);
    assert!(head.get("trace").is_none(), "no token, no field: {head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_can_be_turned_off() {
    let app = cinemo("all")
        .env("CINEMO__LOG__ACCESS", "false")
        .ready()
        .await;
    let http = client();
    for _ in 0..3 {
        let r = send(http.get(format!("{}/api/health", app.public()))).await;
        assert_eq!(r.status, 200);
    }
    let r = send(http.get(format!("{}/api/version", app.internal()))).await;
    assert_eq!(r.status, 200);
    // Answered, and written by now if they were to be written at all.
    assert!(app.log_events(LOG_ACCESS).is_empty(), "{}", app.logs());
}

#[test]
fn the_access_log_follows_the_text_format() {
    let mut app = cinemo("internal")
        .env("CINEMO__LOG__FORMAT", "text")
        .start();
    // The harness learns addresses from JSON lines: read the port here.
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let logs = app.logs();
        if let Some(at) = logs.find("internal API at ") {
            let rest = &logs[at + "internal API at ".len()..];
            break rest[..rest.find(';').unwrap()].to_owned();
        }
        assert!(Instant::now() < deadline, "not ready:\n{logs}");
        app.assert_running();
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = reqwest::blocking::get(format!("{url}/api/cache/aaaaaaaaaaaaaaaaaaaaaaaa"))
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(line) = app.logs().lines().find(|l| l.contains(LOG_ACCESS_TARGET)) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no access line:\n{}", app.logs());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(line.contains(" INFO "), "{line}");
    for field in [
        "tier=\"internal\"",
        "method=\"GET\"",
        "path=\"/api/cache/aaaaaaaaaaaaaaaaaaaaaaaa\"",
        "status=404",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(!line.contains('\u{1b}'), "no colours in a pipe: {line:?}");
}

#[test]
fn the_banner_says_where_to_go_once_ready() {
    let app = cinemo("all").spawn();
    let ready = app.logs().lines().position(|l| l.contains(LOG_READY));
    let public = app.public().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<String> = loop {
        let lines: Vec<String> = app
            .logs()
            .lines()
            .filter(|l| l.contains("cinemo::startup::banner"))
            .map(str::to_owned)
            .collect();
        if lines.len() >= 4 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 4, "{}", app.logs());
    let first = app.logs().lines().position(|l| l == lines[0]).unwrap();
    assert!(ready.unwrap() < first, "the banner follows the ready line");
    let message = |l: &str| serde_json::from_str::<Value>(l).unwrap()["message"].to_string();
    let public_line = message(&lines[0]);
    for part in [
        format!("public API at {public}"),
        format!("Swagger UI at {public}/api/docs"),
        format!("{public}/api/openapi.json"),
    ] {
        assert!(public_line.contains(&part), "{part} not in {public_line}");
    }
    assert!(message(&lines[1]).contains(&format!("internal API at {}", app.internal())));
    // The harness runs SQLite in a temp dir; the banner names the file.
    let db = app.dir.path().join("cinemo.db");
    let db = db.canonicalize().unwrap_or(db);
    let storage = message(&lines[2]);
    assert!(
        storage.contains("sqlite") && storage.contains(db.to_str().unwrap()),
        "{storage} does not name {}",
        db.display()
    );
    let telemetry = message(&lines[3]);
    assert!(
        telemetry.contains("metrics and traces off")
            && telemetry.contains("diagnostics frames off"),
        "{telemetry}"
    );
}

#[test]
fn a_log_level_that_is_no_level_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let (status, out, err) = run(&[], &[("CINEMO__LOG__LEVEL", "inof")], dir.path());
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("log.level") && err.contains("\"inof\"") && err.contains("neither a level"),
        "{err}"
    );
}
