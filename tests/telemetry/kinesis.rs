//! The Kinesis sink against kinesalite (real PutRecords/GetRecords), a TCP
//! proxy that takes Kinesis away, and a fake endpoint that fails records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use cinemo::telemetry::names::{LOG_KINESIS_SINK_STOPPED, LOG_KINESIS_WRITE_FAILED};

use super::harness::*;

const STREAM: &str = "cinemo-diagnostics";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Metric {
        app: String,
        name: String,
    },
    Log {
        app: String,
        trace: String,
        message: String,
    },
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Parses one record and checks it is byte for byte the contract's layout
/// (key order, no spaces, `count` 1).
fn frame(raw: &str) -> Seen {
    let v: serde_json::Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    let d = &v["data"];
    let ts = d["timestamp"]
        .as_i64()
        .unwrap_or_else(|| panic!("no timestamp: {raw}"));
    let app = d["appId"].as_str().unwrap().to_owned();
    match v["type"].as_str() {
        Some("metrics") => {
            let name = d["name"].as_str().unwrap().to_owned();
            let expected = format!(
                r#"{{"type":"metrics","data":{{"appId":{},"name":{},"count":1,"timestamp":{ts}}}}}"#,
                q(&app),
                q(&name)
            );
            assert_eq!(raw, expected);
            Seen::Metric { app, name }
        }
        Some("logs") => {
            let trace = d["traceId"].as_str().unwrap().to_owned();
            let message = d["message"].as_str().unwrap().to_owned();
            let expected = format!(
                r#"{{"type":"logs","data":{{"appId":{},"traceId":{},"message":{},"timestamp":{ts}}}}}"#,
                q(&app),
                q(&trace),
                q(&message)
            );
            assert_eq!(raw, expected);
            Seen::Log {
                app,
                trace,
                message,
            }
        }
        other => panic!("unknown frame type {other:?}: {raw}"),
    }
}

fn metric(name: &str) -> Seen {
    Seen::Metric {
        app: "cinemo-public".into(),
        name: name.into(),
    }
}

fn log(app: &str, trace: &str, message: &str) -> Seen {
    Seen::Log {
        app: app.into(),
        trace: trace.into(),
        message: message.into(),
    }
}

fn counts(frames: impl IntoIterator<Item = Seen>) -> BTreeMap<Seen, usize> {
    let mut m = BTreeMap::new();
    for f in frames {
        *m.entry(f).or_default() += 1;
    }
    m
}

fn sink_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CINEMO__KINESIS__ENDPOINT", endpoint.to_owned()),
        ("CINEMO__KINESIS__REGION", "us-east-1".into()),
        ("CINEMO__KINESIS__STREAM_NAME", STREAM.into()),
    ]
}

/// The sink's final counts, from its stop line.
fn sink_counts(app: &Cinemo) -> (u64, u64, u64) {
    let events = app.log_events(LOG_KINESIS_SINK_STOPPED);
    assert_eq!(events.len(), 1, "one stop line expected:\n{}", app.logs());
    let e = &events[0];
    (
        e["sent"].as_u64().unwrap(),
        e["retried"].as_u64().unwrap(),
        e["dropped"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_match_the_requests_and_shutdown_flushes_them() {
    let Some(node_modules) = need_kinesalite() else {
        return;
    };
    let kinesalite = Kinesalite::start(&node_modules);
    let kinesis = kinesis_client(&kinesalite.endpoint()).await;
    create_stream(&kinesis, STREAM, 2).await;

    let mut env = sink_env(&kinesalite.endpoint());
    // Nothing is flushed by time: every frame must come from the final
    // flush at shutdown.
    env.push(("CINEMO__KINESIS__FLUSH_INTERVAL_MS", "600000".into()));
    let mut app = spawn("all", &env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();

    let (s, plain_id) = create(&http, &base, None).await;
    assert_eq!(s, 200);
    assert_eq!(read(&http, &base, &plain_id, &[]).await, 200);
    let (s, traced_id) = create(&http, &base, Some("t-create")).await;
    assert_eq!(s, 200);
    assert_eq!(
        read(&http, &base, &traced_id, &[("X-Trace", "t-read")]).await,
        200
    );
    assert_eq!(
        read(&http, &base, "nope", &[("x-trace", "t-bad")]).await,
        400
    );
    let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{w3c}-00f067aa0ba902b7-01");
    assert_eq!(
        read(&http, &base, &plain_id, &[("traceparent", &traceparent)]).await,
        200
    );
    // Not yet sent: the flush interval is long and the batch is small.
    assert!(
        kinesis_is_empty(&kinesis).await,
        "frames were sent before shutdown"
    );

    app.stop().await;
    let frames = read_all(&kinesis, STREAM).await;
    let seen = counts(frames.iter().map(|f| frame(f)));

    let expected = counts([
        metric("createCustomer.attempt"),
        metric("createCustomer.success"),
        metric("createCustomer.attempt"),
        metric("createCustomer.success"),
        metric("readCustomer.attempt"),
        metric("readCustomer.success"),
        metric("readCustomer.attempt"),
        metric("readCustomer.success"),
        metric("readCustomer.attempt"),
        metric("readCustomer.fail"),
        metric("readCustomer.attempt"),
        metric("readCustomer.success"),
        log(
            "cinemo-internal",
            "t-create",
            &format!("stored {traced_id}"),
        ),
        log(
            "cinemo-public",
            "t-create",
            &format!("created customer {traced_id}"),
        ),
        log("cinemo-internal", "t-read", &format!("read {traced_id}")),
        log(
            "cinemo-public",
            "t-read",
            &format!("read customer {traced_id}"),
        ),
        log(
            "cinemo-public",
            "t-bad",
            "read customer rejected: malformed customerId",
        ),
        log("cinemo-internal", w3c, &format!("read {plain_id}")),
        log("cinemo-public", w3c, &format!("read customer {plain_id}")),
    ]);
    assert_eq!(
        seen,
        expected,
        "frames in the stream:\n{}",
        frames.join("\n")
    );
    let (sent, retried, dropped) = sink_counts(&app);
    assert_eq!((sent, retried, dropped), (frames.len() as u64, 0, 0));
}

async fn kinesis_is_empty(kinesis: &aws_sdk_kinesis::Client) -> bool {
    read_all(kinesis, STREAM).await.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_outage_costs_requests_nothing_and_frames_arrive_after() {
    let Some(node_modules) = need_kinesalite() else {
        return;
    };
    let kinesalite = Kinesalite::start(&node_modules);
    let kinesis = kinesis_client(&kinesalite.endpoint()).await;
    create_stream(&kinesis, STREAM, 2).await;
    let proxy = Proxy::start(kinesalite.addr).await;

    let mut env = sink_env(&proxy.endpoint());
    env.extend([
        // Small enough that the outage overflows it.
        ("CINEMO__KINESIS__BUFFER_CAPACITY", "60".into()),
        ("CINEMO__KINESIS__BATCH_MAX_RECORDS", "20".into()),
        ("CINEMO__KINESIS__FLUSH_INTERVAL_MS", "50".into()),
        ("CINEMO__KINESIS__MAX_BACKOFF_MS", "300".into()),
        // Long enough that a request waiting on a call would show.
        ("CINEMO__KINESIS__CALL_TIMEOUT_MS", "2000".into()),
        ("CINEMO__SHUTDOWN__TIMEOUT_SECS", "10".into()),
    ]);
    let mut app = spawn("all", &env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();
    let (_, id) = create(&http, &base, None).await;

    // Baseline while Kinesis is up, in groups small enough for the buffer;
    // each group is delivered before the next, and before the outage starts
    // (so no call is cut after Kinesis stored its records, which would
    // duplicate them).
    let kin = kinesis.clone();
    let mut events = 2u64;
    let mut baseline = Duration::ZERO;
    let mut delivered = 0;
    for _ in 0..4 {
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(read(&http, &base, &id, &[("X-Trace", "up")]).await, 200);
            baseline = baseline.max(t.elapsed());
            events += 2 + 2; // two metric frames, one log frame per tier
        }
        for _ in 0..200 {
            delivered = read_all(&kin, STREAM).await.len() as u64;
            if delivered == events {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(delivered, events, "frames while Kinesis is up");
    }

    let mut worst = Duration::ZERO;
    for mode in [ProxyMode::Refuse, ProxyMode::Blackhole] {
        proxy.set(mode);
        for _ in 0..60 {
            let t = Instant::now();
            assert_eq!(read(&http, &base, &id, &[("X-Trace", "down")]).await, 200);
            worst = worst.max(t.elapsed());
            events += 2 + 2;
        }
        // The sink runs at idle priority: on a busy host (CI runs suites
        // side by side) it may not get a core during those 60 requests and
        // meet no outage at all, so nothing would fail or be retried. The
        // outage lasts until the sink has tried this endpoint at least once.
        assert!(
            eventually(Duration::from_secs(30), || proxy.accepted(mode) > 0).await,
            "the sink never called Kinesis during the {mode:?} outage:\n{}",
            app.logs()
        );
    }
    // "Normal speed": no request waited for Kinesis (a blackholed call
    // takes 2 s to time out).
    assert!(
        worst < Duration::from_millis(400).max(baseline * 3),
        "a request took {worst:?} during the outage (baseline worst {baseline:?})"
    );

    proxy.set(ProxyMode::Forward);
    for _ in 0..10 {
        assert_eq!(read(&http, &base, &id, &[]).await, 200);
        events += 2;
    }
    // Frames written before shutdown prove delivery resumes on its own.
    let resumed = async {
        for _ in 0..100 {
            if read_all(&kin, STREAM).await.len() as u64 > delivered {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
    .await;
    assert!(
        resumed,
        "no frames arrived after Kinesis came back:\n{}",
        app.logs()
    );

    app.stop().await;
    let frames = read_all(&kinesis, STREAM).await;
    for f in &frames {
        frame(f);
    }
    let (sent, retried, dropped) = sink_counts(&app);
    assert!(
        dropped > 0,
        "the outage should have overflowed a 60-frame buffer"
    );
    assert!(retried > 0, "nothing was retried");
    assert_eq!(
        frames.len() as u64,
        events - dropped,
        "sent {sent}, dropped {dropped}, events {events}"
    );
    assert_eq!(sent, frames.len() as u64);
}

/// Runs `--mode all` with `env` against a fake Kinesis that records each
/// call's records in `calls`: three creates traced with `trace`, then waits
/// for the fake's second call and stops cinemo. Returns the stopped
/// process (its log) and the calls.
async fn three_creates_then_two_calls(
    env: &[(&str, String)],
    trace: &str,
    calls: &Arc<Mutex<Vec<Vec<String>>>>,
) -> (Cinemo, Vec<Vec<String>>) {
    let mut app = spawn("all", env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(create(&http, &base, Some(trace)).await.0, 200);
    }
    let c = calls.clone();
    assert!(
        eventually(Duration::from_secs(10), move || c.lock().unwrap().len()
            >= 2)
        .await,
        "no second call:\n{}",
        app.logs()
    );
    app.stop().await;
    let calls = calls.lock().unwrap().clone();
    (app, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_failure_retries_exactly_the_failed_records() {
    // Every PutRecords call's records, in order; the first call fails the
    // records at positions 1 and 3 with throttling.
    let calls: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let c = calls.clone();
    let fake = FakeServer::start(move |req| {
        assert_eq!(req.header("x-amz-target"), Some("Kinesis_20131202.PutRecords"));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let records: Vec<String> = body["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap();
                String::from_utf8(data).unwrap()
            })
            .collect();
        let mut calls = c.lock().unwrap();
        let first = calls.is_empty();
        let results: Vec<serde_json::Value> = (0..records.len())
            .map(|i| {
                if first && (i == 1 || i == 3) {
                    serde_json::json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"})
                } else {
                    serde_json::json!({"SequenceNumber": format!("{}", i + 1), "ShardId": "shardId-000000000000"})
                }
            })
            .collect();
        let failed = results.iter().filter(|r| r.get("ErrorCode").is_some()).count();
        calls.push(records);
        Response {
            status: 200,
            content_type: "application/x-amz-json-1.1",
            body: serde_json::to_vec(&serde_json::json!({"FailedRecordCount": failed, "Records": results})).unwrap(),
            delay: Duration::ZERO,
        }
    })
    .await;

    let mut env = sink_env(&fake.endpoint());
    env.push(("CINEMO__KINESIS__FLUSH_INTERVAL_MS", "1500".into()));
    let (app, calls) = three_creates_then_two_calls(&env, "partial", &calls).await;
    assert_eq!(calls.len(), 2, "calls: {calls:#?}");
    let first = &calls[0];
    assert_eq!(
        first.len(),
        3 * (2 + 2), // per create: two metric frames, one log frame per tier
        "one batch with every frame: {first:#?}"
    );
    assert_eq!(calls[1], vec![first[1].clone(), first[3].clone()]);
    let (sent, retried, dropped) = sink_counts(&app);
    assert_eq!((sent, retried, dropped), (first.len() as u64, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_is_sent_again_and_counted_as_unknown() {
    // The first PutRecords call is answered only after the sink's call
    // timeout: as far as the sink can tell, Kinesis may have written it.
    let calls: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let c = calls.clone();
    let fake = FakeServer::start(move |req| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let records: Vec<String> = body["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Data"].as_str().unwrap().to_owned())
            .collect();
        let first = {
            let mut calls = c.lock().unwrap();
            calls.push(records);
            calls.len() == 1
        };
        let mut written = put_records_all_written(&req);
        if first {
            // Long after the sink's call timeout.
            written.delay = Duration::from_millis(1500);
        }
        written
    })
    .await;

    let mut env = sink_env(&fake.endpoint());
    env.extend([
        ("CINEMO__KINESIS__FLUSH_INTERVAL_MS", "1000".into()),
        ("CINEMO__KINESIS__CALL_TIMEOUT_MS", "500".into()),
        ("CINEMO__KINESIS__MAX_BACKOFF_MS", "200".into()),
    ]);
    let (app, calls) = three_creates_then_two_calls(&env, "slow", &calls).await;
    assert_eq!(calls.len(), 2, "calls: {calls:#?}");
    assert_eq!(calls[0].len(), 3 * (2 + 2), "one batch: {:#?}", calls[0]);
    assert_eq!(
        calls[1], calls[0],
        "the whole batch is sent again, in order"
    );
    let stopped = &app.log_events(LOG_KINESIS_SINK_STOPPED)[0];
    let n = calls[0].len() as u64;
    assert_eq!(
        (
            stopped["sent"].as_u64(),
            stopped["retried"].as_u64(),
            stopped["unknown"].as_u64(),
            stopped["dropped"].as_u64()
        ),
        (Some(n), Some(n), Some(n), Some(0)),
        "{stopped}"
    );
    let warned = app.log_events(LOG_KINESIS_WRITE_FAILED);
    assert!(
        warned.iter().any(|w| w["error"]
            .as_str()
            .unwrap_or_default()
            .contains("outcome unknown")),
        "the warning says the batch may be duplicated:\n{}",
        app.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_kinesis_down_ends_on_time_and_counts_what_it_drops() {
    let hole = Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    hole.set(ProxyMode::Blackhole);
    let mut env = sink_env(&hole.endpoint());
    env.extend([
        ("CINEMO__KINESIS__CALL_TIMEOUT_MS", "500".into()),
        ("CINEMO__SHUTDOWN__TIMEOUT_SECS", "2".into()),
    ]);
    let mut app = spawn("all", &env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();
    for _ in 0..10 {
        assert_eq!(create(&http, &base, None).await.0, 200);
    }
    let t = Instant::now();
    app.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(sink_counts(&app).0, 0);
    assert_eq!(
        sink_counts(&app).2,
        20,
        "every undelivered frame is counted"
    );
    let stopped = &app.log_events(LOG_KINESIS_SINK_STOPPED)[0];
    assert!(
        !stopped["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the stop line names the last error: {stopped}"
    );
}

#[derive(Debug)]
struct ThreadPriority {
    name: String,
    nice: i64,
    policy: i64,
}

/// Name, nice value and scheduling policy of every thread of process
/// `pid` (Linux).
fn thread_priorities(pid: u32) -> Vec<ThreadPriority> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc") {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
        // "tid (name) state ppid ...": the name may hold spaces; the nice
        // value is field 19 and the policy field 41 (proc(5)), the 17th and
        // the 39th after the name.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|n| n.parse().ok());
        if let (Some(nice), Some(policy)) = (field(16), field(38)) {
            out.push(ThreadPriority {
                name: stat[open + 1..close].to_owned(),
                nice,
                policy,
            });
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_threads_yield_to_the_request_threads() {
    // Nothing listens on port 9: export only has to be switched on.
    let mut env = sink_env("http://127.0.0.1:9");
    env.extend([
        ("CINEMO__OTLP__ENABLED", "true".into()),
        ("CINEMO__OTLP__ENDPOINT", "http://127.0.0.1:9".into()),
    ]);
    let mut app = spawn("all", &env).await;
    // The listeners are bound when cinemo says it is ready; actix starts
    // its worker threads beside that. One request answered means they run.
    let live = reqwest::get(format!("{}/api/health/live", app.url()))
        .await
        .expect("live");
    assert_eq!(live.status(), 200);
    let threads = thread_priorities(app.pid());
    app.stop().await;
    let of = |prefix: &str| -> Vec<(i64, i64)> {
        threads
            .iter()
            .filter(|t| t.name.starts_with(prefix))
            .map(|t| (t.nice, t.policy))
            .collect()
    };
    // The request threads keep the default priority and policy...
    let workers = of("actix-rt");
    assert!(
        !workers.is_empty()
            && workers
                .iter()
                .all(|w| *w == (0, i64::from(libc::SCHED_OTHER))),
        "{threads:?}"
    );
    // ...and every thread that exports telemetry runs below them: at nice
    // 19 and under SCHED_IDLE, which gives up the core to them at once.
    for exporter in ["cinemo-kinesis", "OpenTelemetry"] {
        let exporters = of(exporter);
        assert!(
            !exporters.is_empty()
                && exporters
                    .iter()
                    .all(|e| *e == (19, i64::from(libc::SCHED_IDLE))),
            "{exporter}: {threads:?}"
        );
    }
}
