//! What the log says when the collector is missing or comes back: one WARN
//! with the endpoint and the reason, one INFO when export works again, no
//! ERROR from the OpenTelemetry SDK, and no wait for a missing collector at
//! shutdown.

use std::time::{Duration, Instant};

use cinemo::telemetry::names::{
    LOG_OTLP_EXPORT_FAILING, LOG_OTLP_EXPORT_RESTORED, LOG_TIER_DRAINED,
};
use serde_json::Value;

use super::harness::*;

/// OTLP to `endpoint`, exporting every `interval_ms`, every trace sampled.
fn otlp_to(endpoint: String, interval_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("CINEMO__OTLP__ENABLED", "true".to_owned()),
        ("CINEMO__OTLP__ENDPOINT", endpoint),
        ("CINEMO__OTLP__EXPORT_INTERVAL_MS", interval_ms.to_string()),
        ("CINEMO__OTLP__TIMEOUT_MS", "1000".to_owned()),
        ("CINEMO__OTLP__TRACE_SAMPLE_RATIO", "1.0".to_owned()),
    ]
}

/// Creates customers (traffic to export) until `message` is logged or
/// 20 s pass.
async fn traffic_until(app: &Cinemo, http: &reqwest::Client, message: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let (status, _) = create(http, app.url(), None).await;
        assert_eq!(status, 200, "requests are unaffected");
        if !app.log_events(message).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Traffic for `how_long`: several more export rounds.
async fn traffic_for(app: &Cinemo, http: &reqwest::Client, how_long: Duration) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        let (status, _) = create(http, app.url(), None).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every JSON line at `level`.
fn at_level(app: &Cinemo, level: &str) -> Vec<Value> {
    app.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == level)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_collector_one_warning_says_why_and_the_stop_does_not_wait() {
    let base = format!("http://{}", crate::common::closed_port());
    // Exports every second: the stop below comes with metrics and spans
    // not exported yet, which the exporter would retry for about 0.7 s each.
    let mut app = spawn("all", &otlp_to(base.clone(), 1000)).await;
    let http = reqwest::Client::new();
    assert!(
        traffic_until(&app, &http, LOG_OTLP_EXPORT_FAILING).await,
        "no export warning:\n{}",
        app.logs()
    );
    // More export rounds, each failing.
    traffic_for(&app, &http, Duration::from_millis(2200)).await;
    let (status, _) = create(&http, app.url(), None).await;
    assert_eq!(status, 200);
    app.stop().await;

    let errors = at_level(&app, "ERROR");
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    let warnings = at_level(&app, "WARN");
    assert_eq!(warnings.len(), 1, "one warning in all: {warnings:#?}");
    let warning = &warnings[0];
    assert_eq!(warning["message"], LOG_OTLP_EXPORT_FAILING);
    let endpoint = warning["endpoint"].as_str().unwrap();
    assert!(
        endpoint == format!("{base}/v1/metrics") || endpoint == format!("{base}/v1/traces"),
        "{warning}"
    );
    let error = warning["error"].as_str().unwrap();
    assert!(
        error.contains("Connection refused"),
        "the reason: {warning}"
    );
    assert!(
        app.log_events(LOG_OTLP_EXPORT_RESTORED).is_empty(),
        "{}",
        app.logs()
    );
    // From the end of the drain to the exit is the telemetry flush: the
    // exporter's retries took about a second per signal there.
    let at = |message: &str| {
        let events = app.log_events(message);
        let last = events.last().unwrap_or_else(|| panic!("no {message:?}"));
        humantime::parse_rfc3339(last["timestamp"].as_str().unwrap()).unwrap()
    };
    let flush = at("cinemo stopped cleanly")
        .duration_since(at(LOG_TIER_DRAINED))
        .unwrap();
    assert!(
        flush < Duration::from_millis(500),
        "the flush took {flush:?}:\n{}",
        app.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_collector_comes_back_one_line_says_so() {
    let collector = FakeServer::start(|_| Response {
        status: 200,
        content_type: "application/x-protobuf",
        body: Vec::new(),
        delay: Duration::ZERO,
    })
    .await;
    let link = Proxy::start(collector.addr).await;
    link.set(ProxyMode::Refuse);
    let mut app = spawn("all", &otlp_to(link.endpoint(), 200)).await;
    let http = reqwest::Client::new();
    assert!(
        traffic_until(&app, &http, LOG_OTLP_EXPORT_FAILING).await,
        "no export warning:\n{}",
        app.logs()
    );
    traffic_for(&app, &http, Duration::from_millis(600)).await;
    link.set(ProxyMode::Forward);
    assert!(
        traffic_until(&app, &http, LOG_OTLP_EXPORT_RESTORED).await,
        "export did not come back:\n{}",
        app.logs()
    );
    traffic_for(&app, &http, Duration::from_millis(600)).await;
    app.stop().await;

    assert!(at_level(&app, "ERROR").is_empty(), "{}", app.logs());
    let warnings = at_level(&app, "WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["message"], LOG_OTLP_EXPORT_FAILING);
    let back = app.log_events(LOG_OTLP_EXPORT_RESTORED);
    assert_eq!(back.len(), 1, "{back:#?}");
    assert_eq!(back[0]["level"], "INFO");
    assert_eq!(back[0]["endpoint"], link.endpoint());
    assert!(
        back[0]["failed_exports"].as_u64().unwrap() >= 2,
        "{}",
        back[0]
    );
}
