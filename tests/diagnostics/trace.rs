//! `--trace`: one trace's frames, complete and oldest first, from every
//! shard; `--since`; records that are not frames.

use std::time::{Duration, UNIX_EPOCH};

use super::harness::*;

const RUN: Duration = Duration::from_secs(30);
const NAME: &str = r#"{"name":"Ann Smith"}"#;

/// A customer's bad afternoon, every request with `X-Trace: trace`: what
/// the trace should say, as sorted `(appId, message)` pairs.
async fn bad_afternoon(base: &str, trace: &str) -> Vec<(String, String)> {
    let (status, id) = create(base, trace, NAME).await;
    assert_eq!(status, 200);
    assert_eq!(read(base, trace, &id).await, 200);
    let missing = "aaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(read(base, trace, missing).await, 404);
    assert_eq!(read(base, trace, "not-an-id").await, 400);
    assert_eq!(create(base, trace, "{}").await.0, 400);
    let mut said: Vec<(String, String)> = [
        ("cinemo-internal", format!("stored {id}")),
        ("cinemo-public", format!("created customer {id}")),
        ("cinemo-internal", format!("read {id}")),
        ("cinemo-public", format!("read customer {id}")),
        ("cinemo-internal", format!("read {missing}: not found")),
        ("cinemo-public", format!("customer {missing} not found")),
        (
            "cinemo-public",
            "read customer rejected: malformed customerId".into(),
        ),
        (
            "cinemo-public",
            "create customer rejected: customer name missing".into(),
        ),
    ]
    .into_iter()
    .map(|(app, message)| (app.to_owned(), message))
    .collect();
    said.sort();
    said
}

fn frames_of(finished: &Finished) -> Vec<LogFrame> {
    finished
        .stdout
        .iter()
        .map(|l| log_frame(l).unwrap_or_else(|| panic!("not a log frame: {l}")))
        .collect()
}

fn oldest_first(frames: &[LogFrame]) -> bool {
    frames.windows(2).all(|w| w[0].timestamp <= w[1].timestamp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_comes_back_complete_and_in_order_from_every_shard() {
    let kinesis = Kinesis::with_shards(4).await;
    let mut app = kinesis.writer().await;
    let base = app.url().to_owned();
    let expected = bad_afternoon(&base, "cust-42").await;
    // Other traffic in the same minutes: another trace, untraced requests.
    bad_afternoon(&base, "cust-43").await;
    let (_, id) = create(&base, "", NAME).await;
    assert_eq!(read(&base, "", &id).await, 200);
    // The sink's final flush: every frame is in the stream.
    app.stop().await;

    let by_shard = kinesis.records_by_shard().await;
    let in_stream = trace_frames(by_shard.iter().flatten(), "cust-42");
    assert_eq!(said(&in_stream), expected, "what cinemo wrote");
    let shards_used = by_shard
        .iter()
        .filter(|records| !trace_frames(records.iter(), "cust-42").is_empty())
        .count();
    assert!(
        shards_used >= 2,
        "the trace's frames are in {shards_used} shard(s); the test needs them spread"
    );

    let json = Diagnostics::run(
        &kinesis.reader_env(),
        &["--trace", "cust-42", "--json"],
        RUN,
    )
    .await;
    assert!(json.status.success(), "{json:?}");
    // The records' data as written, each exactly once.
    let mut printed = json.stdout.clone();
    printed.sort();
    let mut written: Vec<String> = by_shard
        .iter()
        .flatten()
        .filter(|r| log_frame(r).is_some_and(|f| f.trace_id == "cust-42"))
        .cloned()
        .collect();
    written.sort();
    assert_eq!(printed, written);
    let frames = frames_of(&json);
    assert!(oldest_first(&frames), "not oldest first: {frames:#?}");
    assert_eq!(json.stderr.len(), 2, "{:?}", json.stderr);
    assert!(
        json.stderr[0].starts_with(&format!(
            "cinemo diagnostics: reading stream {STREAM} (4 shards, us-east-1) from "
        )),
        "{:?}",
        json.stderr
    );
    assert!(
        json.stderr[1].starts_with("cinemo diagnostics: 8 frames of trace cust-42 since "),
        "{:?}",
        json.stderr
    );

    // Readable lines: time (UTC, ms), tier, message, oldest first.
    let text = Diagnostics::run(&kinesis.reader_env(), &["--trace", "cust-42"], RUN).await;
    assert!(text.status.success(), "{text:?}");
    let mut lines = text.stdout.clone();
    let times = lines.iter().map(|l| l.get(..24).unwrap_or(l));
    assert!(times.is_sorted(), "not oldest first: {lines:#?}");
    lines.sort();
    let mut expected_lines: Vec<String> = frames
        .iter()
        .map(|f| {
            let time = UNIX_EPOCH + Duration::from_millis(f.timestamp as u64);
            format!(
                "{}  {:<15}  {}",
                humantime::format_rfc3339_millis(time),
                f.app_id,
                f.message
            )
        })
        .collect();
    expected_lines.sort();
    assert_eq!(lines, expected_lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_bounds_hold() {
    let kinesis = Kinesis::with_shards(2).await;
    let mut app = kinesis.writer().await;
    let base = app.url().to_owned();
    let (_, early) = create(&base, "since-1", NAME).await;
    // Every frame of the first request is older than `boundary`, every
    // frame of the second one at least as new.
    let boundary = now_ms() + 1;
    while now_ms() <= boundary {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (_, late) = create(&base, "since-1", NAME).await;
    app.stop().await;

    let pairs = |id: &str| {
        vec![
            ("cinemo-internal".to_owned(), format!("stored {id}")),
            ("cinemo-public".to_owned(), format!("created customer {id}")),
        ]
    };
    let env = kinesis.reader_env();
    let at = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(boundary as u64))
        .to_string();
    // The same instant, written in three ways.
    let in_berlin = {
        let utc = humantime::format_rfc3339_millis(
            UNIX_EPOCH + Duration::from_millis((boundary + 3_600_000) as u64),
        )
        .to_string();
        format!("{}+01:00", utc.trim_end_matches('Z'))
    };
    for since in [at.clone(), boundary.to_string(), in_berlin] {
        let run = Diagnostics::run(
            &env,
            &["--trace", "since-1", "--json", "--since", &since],
            RUN,
        )
        .await;
        assert!(run.status.success(), "{run:?}");
        let frames = frames_of(&run);
        assert_eq!(said(&frames), pairs(&late), "--since {since}");
        assert!(frames.iter().all(|f| f.timestamp >= boundary));
        assert!(oldest_first(&frames));
    }

    let hour = Diagnostics::run(
        &env,
        &["--trace", "since-1", "--json", "--since", "1h"],
        RUN,
    )
    .await;
    let mut both = pairs(&early);
    both.extend(pairs(&late));
    both.sort();
    assert_eq!(said(&frames_of(&hour)), both);

    // Nothing newer than now: no frames, and a word on why.
    let none = Diagnostics::run(&env, &["--trace", "since-1", "--since", "0s"], RUN).await;
    assert!(none.status.success(), "{none:?}");
    assert!(none.stdout.is_empty(), "{none:?}");
    assert!(
        none.stderr
            .last()
            .is_some_and(|l| l.contains("no frames of trace since-1")),
        "{:?}",
        none.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_are_not_frames_are_left_out_and_counted() {
    let kinesis = Kinesis::with_shards(1).await;
    let mut app = kinesis.writer().await;
    let (_, id) = create(app.url(), "mixed", NAME).await;
    app.stop().await;
    // What the binary never writes: another producer's records.
    for data in [
        &b"not json"[..],
        br#"{"type":"logs","data":{"traceId":"mixed"}}"#,
    ] {
        kinesis
            .client
            .put_record()
            .stream_name(STREAM)
            .partition_key("other-producer")
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send()
            .await
            .expect("PutRecord");
    }

    let run = Diagnostics::run(&kinesis.reader_env(), &["--trace", "mixed"], RUN).await;
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout.len(), 2, "{:?}", run.stdout);
    assert!(run.stdout[1].ends_with(&format!("created customer {id}")));
    assert_eq!(
        run.stderr.last().map(String::as_str),
        Some(
            "cinemo diagnostics: 2 records in the stream were not cinemo frames and were left out"
        )
    );
}
