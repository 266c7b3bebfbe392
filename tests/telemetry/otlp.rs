//! OpenTelemetry export of two processes (`--mode public` and `--mode
//! internal`) into an OTLP/HTTP receiver run by the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use cinemo::telemetry::names::LOG_KINESIS_SINK_STOPPED;

use super::harness::*;

type Attrs = HashMap<String, String>;

fn attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

#[derive(Default)]
struct Received {
    metrics: Vec<(Attrs, Metric)>,
    spans: Vec<(Attrs, Span)>,
}

impl Received {
    fn mode(resource: &Attrs) -> &str {
        resource
            .get("cinemo.mode")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Sum of a counter's delta points in `mode` whose attributes include `want`.
    fn counter(&self, mode: &str, name: &str, want: &[(&str, &str)]) -> i64 {
        let mut total = 0;
        for (res, m) in self
            .metrics
            .iter()
            .filter(|(r, m)| Self::mode(r) == mode && m.name == name)
        {
            let _ = res;
            let Some(metric::Data::Sum(sum)) = &m.data else {
                panic!("{name} is not a sum")
            };
            for p in &sum.data_points {
                if matches(&attrs(&p.attributes), want) {
                    total += match p.value {
                        Some(number_data_point::Value::AsInt(i)) => i,
                        Some(number_data_point::Value::AsDouble(d)) => d as i64,
                        None => 0,
                    };
                }
            }
        }
        total
    }

    /// Count of a histogram's recordings in `mode` matching `want`.
    fn histogram(&self, mode: &str, name: &str, want: &[(&str, &str)]) -> u64 {
        let mut total = 0;
        for (_, m) in self
            .metrics
            .iter()
            .filter(|(r, m)| Self::mode(r) == mode && m.name == name)
        {
            let Some(metric::Data::Histogram(h)) = &m.data else {
                panic!("{name} is not a histogram")
            };
            assert_eq!(m.unit, "s", "{name} unit");
            for p in &h.data_points {
                if matches(&attrs(&p.attributes), want) {
                    total += p.count;
                    assert!(p.sum.unwrap_or_default() >= 0.0);
                }
            }
        }
        total
    }
}

fn matches(have: &Attrs, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// An OTLP/HTTP receiver that keeps everything it is sent.
async fn otlp_receiver() -> (FakeServer, Arc<Mutex<Received>>) {
    let received: Arc<Mutex<Received>> = Arc::default();
    let r = received.clone();
    let receiver = FakeServer::start(move |req| {
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("content-type"), Some("application/x-protobuf"));
        let mut got = r.lock().unwrap();
        match req.path.as_str() {
            "/v1/metrics" => {
                let export = ExportMetricsServiceRequest::decode(req.body.as_slice())
                    .expect("metrics protobuf");
                for rm in export.resource_metrics {
                    let res = attrs(&rm.resource.map(|r| r.attributes).unwrap_or_default());
                    for sm in rm.scope_metrics {
                        for m in sm.metrics {
                            got.metrics.push((res.clone(), m));
                        }
                    }
                }
            }
            "/v1/traces" => {
                let export = ExportTraceServiceRequest::decode(req.body.as_slice())
                    .expect("traces protobuf");
                for rs in export.resource_spans {
                    let res = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.spans.push((res.clone(), s));
                        }
                    }
                }
            }
            other => panic!("unexpected OTLP path {other}"),
        }
        Response {
            status: 200,
            content_type: "application/x-protobuf",
            body: Vec::new(),
            delay: std::time::Duration::ZERO,
        }
    })
    .await;
    (receiver, received)
}

/// `--mode internal` with `internal_env`, then `--mode public` with
/// `public_env` in front of it, as in production.
async fn both_tiers(
    internal_env: &[(&str, String)],
    public_env: &[(&str, String)],
) -> (Cinemo, Cinemo) {
    let internal = spawn("internal", internal_env).await;
    let mut env = public_env.to_vec();
    env.push(("CINEMO__PUBLIC__INTERNAL_URL", internal.url().to_owned()));
    let public = spawn("public", &env).await;
    (internal, public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_one_trace_across_both_tiers_reach_the_collector() {
    let (receiver, received) = otlp_receiver().await;
    // No new trace is sampled: only the read that arrives with a sampled
    // `traceparent` may leave spans, in both tiers.
    let otlp = vec![
        ("CINEMO__OTLP__ENABLED", "true".to_owned()),
        ("CINEMO__OTLP__ENDPOINT", receiver.endpoint()),
        ("CINEMO__OTLP__EXPORT_INTERVAL_MS", "500".to_owned()),
        ("CINEMO__OTLP__TRACE_SAMPLE_RATIO", "0".to_owned()),
    ];
    // A storage call gives up after 300 ms, so a create waiting on a lock
    // below fails on cinemo's side quickly.
    let mut internal_env = otlp.clone();
    internal_env.push(("CINEMO__STORAGE__TIMEOUT_MS", "300".to_owned()));
    let (mut internal, mut public) = both_tiers(&internal_env, &otlp).await;
    let base = public.url().to_owned();

    let http = reqwest::Client::new();
    let (status, id) = create(&http, &base, None).await;
    assert_eq!(status, 200);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent_id = "b7ad6b7169203331";
    let traceparent = format!("00-{trace_id}-{parent_id}-01");
    assert_eq!(
        read(&http, &base, &id, &[("traceparent", &traceparent)]).await,
        200
    );
    assert_eq!(read(&http, &base, &"0".repeat(24), &[]).await, 404);
    let batch = http
        .post(format!("{base}/api/customers/batch"))
        .header("Idempotency-Key", "otlp-batch")
        .json(&serde_json::json!([{"name": "Ada"}, {"name": "Alan"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    // The key again with another payload: storage answers, and that answer
    // (422) is a storage call that worked, not a failed one.
    let reused = http
        .post(format!("{base}/api/customers/batch"))
        .header("Idempotency-Key", "otlp-batch")
        .json(&serde_json::json!([{"name": "Grace"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 422);
    let bad_name = http
        .post(format!("{base}/api/customers"))
        .json(&serde_json::json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_name.status(), 400);

    // A create that fails on cinemo's side: SQLite's write lock is held
    // elsewhere, as by a stuck writer, until the storage call times out.
    let locker = crate::common::lock_sqlite(&internal.dir.path().join("cinemo.db")).await;
    let (stuck, _) = create(&http, &base, None).await;
    assert!(
        (502..=504).contains(&stuck),
        "create with the database locked: {stuck}"
    );
    drop(locker);

    // Shutdown flushes both providers: no waiting for an export period.
    public.stop().await;
    internal.stop().await;
    let got = received.lock().unwrap();

    // Resource attributes.
    for mode in ["public", "internal"] {
        let (res, _) = got
            .metrics
            .iter()
            .find(|(r, _)| Received::mode(r) == mode)
            .unwrap_or_else(|| panic!("no metrics from the {mode} tier"));
        assert_eq!(res["service.name"], "cinemo");
        assert_eq!(res["service.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(res["deployment.environment"], "dev");
        assert!(!res["host.name"].is_empty() && !res["service.instance.id"].is_empty());
    }

    // Business counters. A client's mistake (the 400 create, the 404 read)
    // is an attempt but no failure: the failure alarms count only cinemo's
    // own (the create that met the lock).
    let outcome = |o| [("outcome", o)];
    assert_eq!(
        got.counter("public", "cinemo.customer.create", &outcome("attempt")),
        3
    );
    assert_eq!(
        got.counter("public", "cinemo.customer.create", &outcome("success")),
        1
    );
    assert_eq!(
        got.counter("public", "cinemo.customer.create", &outcome("fail")),
        1
    );
    assert_eq!(
        got.counter("public", "cinemo.customer.read", &outcome("attempt")),
        2
    );
    assert_eq!(
        got.counter("public", "cinemo.customer.read", &outcome("success")),
        1
    );
    assert_eq!(
        got.counter("public", "cinemo.customer.read", &outcome("fail")),
        0
    );

    // Request durations by route pattern, never the raw path.
    let route = |r, m, s| {
        [
            ("http.route", r),
            ("http.request.method", m),
            ("http.response.status_code", s),
        ]
    };
    let d = "http.server.request.duration";
    assert_eq!(
        got.histogram("public", d, &route("/api/customers", "POST", "200")),
        1
    );
    assert_eq!(
        got.histogram("public", d, &route("/api/customers/{id}", "GET", "200")),
        1
    );
    assert_eq!(
        got.histogram("public", d, &route("/api/customers/{id}", "GET", "404")),
        1
    );
    assert_eq!(
        got.histogram("internal", d, &route("/api/cache", "POST", "200")),
        1
    );
    assert_eq!(
        got.histogram("internal", d, &route("/api/cache/{id}", "GET", "200")),
        1
    );
    assert_eq!(
        got.histogram("internal", d, &route("/api/cache/{id}", "GET", "404")),
        1
    );
    assert!(
        !got.metrics
            .iter()
            .any(|(_, m)| m.name == d && format!("{m:?}").contains(id.as_str())),
        "a raw path leaked into http.route"
    );

    assert_eq!(
        got.histogram("public", d, &route("/api/customers/batch", "POST", "200")),
        1
    );
    assert_eq!(
        got.histogram("internal", d, &route("/api/cache/batch", "POST", "200")),
        1
    );
    assert_eq!(
        got.histogram("internal", d, &route("/api/cache/batch", "POST", "422")),
        1
    );

    // Dependencies: public -> internal (5 calls, the batches' included; a
    // 422 answer is a call that worked), internal -> storage (one
    // operation each; the reused key is storage's answer, not its failure).
    let dep = "cinemo.dependency.duration";
    assert_eq!(
        got.histogram(
            "public",
            dep,
            &[("peer", "internal"), ("outcome", "success")]
        ),
        5
    );
    assert_eq!(
        got.histogram(
            "internal",
            dep,
            &[("peer", "storage"), ("outcome", "success")]
        ),
        5
    );

    // One read is one trace across both tiers.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let read_spans: Vec<&Span> = got
        .spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let find = |name: &str, kind: i32| {
        let found: Vec<&&Span> = read_spans
            .iter()
            .filter(|s| s.name == name && s.kind == kind)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name} in the read's trace: {read_spans:#?}"
        );
        (*found[0]).clone()
    };
    let public_server = find("GET /api/customers/{id}", SERVER);
    assert_eq!(hex(&public_server.parent_span_id), parent_id);
    let public_client = find("GET /api/cache/{id}", CLIENT);
    assert_eq!(public_client.parent_span_id, public_server.span_id);
    let internal_server = find("GET /api/cache/{id}", SERVER);
    assert_eq!(internal_server.parent_span_id, public_client.span_id);
    let storage = find("sqlite get", CLIENT);
    assert_eq!(storage.parent_span_id, internal_server.span_id);
    assert_eq!(read_spans.len(), 4, "{read_spans:#?}");
    assert_eq!(
        got.spans.len(),
        4,
        "requests without a sampled traceparent left spans at ratio 0: {:#?}",
        got.spans
    );
    let status = attrs(&internal_server.attributes);
    assert_eq!(status["http.response.status_code"], "200");
    assert_eq!(status["http.route"], "/api/cache/{id}");
}

/// A collector that accepts connections and never answers: requests keep
/// their speed and shutdown stays within its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_tier_only_follows_traces_the_public_tier_started() {
    let (receiver, received) = otlp_receiver().await;
    let otlp = |ratio: &str| {
        vec![
            ("CINEMO__OTLP__ENABLED", "true".to_owned()),
            ("CINEMO__OTLP__ENDPOINT", receiver.endpoint()),
            ("CINEMO__OTLP__TRACE_SAMPLE_RATIO", ratio.to_owned()),
        ]
    };
    // The internal tier would sample every trace it started; it must start
    // none, although the public tier sends no "not sampled" header for an
    // unsampled trace it started itself.
    let (mut internal, mut public) = both_tiers(&otlp("1.0"), &otlp("0")).await;
    let http = reqwest::Client::new();
    let (status, id) = create(&http, public.url(), None).await;
    assert_eq!(status, 200);
    assert_eq!(read(&http, public.url(), &id, &[]).await, 200);
    // Straight to the internal tier, without a traceparent.
    let direct = http
        .get(format!("{}/api/cache/{id}", internal.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    public.stop().await;
    internal.stop().await;
    let got = received.lock().unwrap();
    assert!(
        got.metrics
            .iter()
            .any(|(r, _)| Received::mode(r) == "internal"),
        "the internal tier's metrics were exported (export works)"
    );
    assert!(
        got.spans.is_empty(),
        "no span from traces nobody sampled: {:#?}",
        got.spans
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_costs_requests_nothing() {
    let hole = Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    hole.set(ProxyMode::Blackhole);
    let env = vec![
        ("CINEMO__OTLP__ENABLED", "true".to_owned()),
        ("CINEMO__OTLP__ENDPOINT", hole.endpoint()),
        ("CINEMO__OTLP__EXPORT_INTERVAL_MS", "100".to_owned()),
        ("CINEMO__OTLP__TIMEOUT_MS", "1000".to_owned()),
        ("CINEMO__SHUTDOWN__TIMEOUT_SECS", "2".to_owned()),
    ];
    let mut app = spawn("all", &env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();
    let mut worst = std::time::Duration::ZERO;
    for _ in 0..50 {
        let t = std::time::Instant::now();
        let r = http
            .post(format!("{base}/api/customers"))
            .json(&serde_json::json!({"name": "Lin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        worst = worst.max(t.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        worst < std::time::Duration::from_millis(300),
        "a request took {worst:?}"
    );
    let t = std::time::Instant::now();
    app.stop().await;
    // The flush budget is the 2 s shutdown deadline, not the exporter's retries.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(6),
        "stop took {:?}",
        t.elapsed()
    );
}

/// `cinemo.kinesis.records` is read from the sink's own counts at export:
/// what the duty manager's dropped-frames alarm sees must be exactly what
/// the sink did (its stop line), every frame sent or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kinesis_sink_exports_its_own_counts() {
    let (receiver, received) = otlp_receiver().await;
    // A PutRecords endpoint that stores nothing and fails nothing.
    let kinesis = FakeServer::start(|req| put_records_all_written(&req)).await;
    let env = vec![
        ("CINEMO__OTLP__ENABLED", "true".to_owned()),
        ("CINEMO__OTLP__ENDPOINT", receiver.endpoint()),
        ("CINEMO__OTLP__TRACE_SAMPLE_RATIO", "0".to_owned()),
        ("CINEMO__KINESIS__ENDPOINT", kinesis.endpoint()),
        ("CINEMO__KINESIS__REGION", "us-east-1".to_owned()),
        (
            "CINEMO__KINESIS__STREAM_NAME",
            "cinemo-diagnostics".to_owned(),
        ),
        // Small enough that concurrent requests overflow it.
        ("CINEMO__KINESIS__BUFFER_CAPACITY", "2".to_owned()),
    ];
    let mut app = spawn("all", &env).await;
    let base = app.url().to_owned();
    let http = reqwest::Client::new();
    let creates = (0..20).map(|i| {
        http.post(format!("{base}/api/customers"))
            .header("X-Trace", format!("t-{i}"))
            .json(&serde_json::json!({"name": "Ada"}))
            .send()
    });
    for r in futures_util::future::join_all(creates).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    app.stop().await;

    let stop = app.log_events(LOG_KINESIS_SINK_STOPPED);
    assert_eq!(stop.len(), 1, "{}", app.logs());
    let count = |k: &str| stop[0][k].as_i64().unwrap();
    let (sent, retried, dropped) = (count("sent"), count("retried"), count("dropped"));
    // Per traced create: two metric frames, one log frame per tier.
    assert_eq!(sent + dropped, 20 * 4, "{}", app.logs());
    assert!(sent > 0);
    let got = received.lock().unwrap();
    let records = |result| got.counter("all", "cinemo.kinesis.records", &[("result", result)]);
    assert_eq!(
        (records("sent"), records("retried"), records("dropped")),
        (sent, retried, dropped)
    );
}
