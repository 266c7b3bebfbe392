//! What cannot be read says so in one line on stderr, and exits 1.

use std::time::Duration;

use super::harness::*;

const RUN: Duration = Duration::from_secs(30);

/// One line on stderr starting with `start`, nothing on stdout, exit 1.
fn one_line(finished: &Finished, start: &str) {
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(finished.stdout.is_empty(), "{finished:?}");
    assert_eq!(finished.stderr.len(), 1, "{:?}", finished.stderr);
    assert!(
        finished.stderr[0].starts_with(start),
        "{:?} does not start with {start:?}",
        finished.stderr[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream() {
    let kinesis = Kinesis::with_shards(0).await;
    let run = Diagnostics::run(&kinesis.reader_env(), &["--trace", "t"], RUN).await;
    one_line(
        &run,
        &format!(
            "cinemo diagnostics: stream {STREAM} not found in region us-east-1 ({}): check kinesis.stream_name and kinesis.region",
            kinesis.endpoint()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint() {
    let kinesis = Kinesis::with_shards(0).await;
    let closed = crate::common::closed_port();
    let mut env = kinesis.reader_env();
    env.push(("CINEMO__KINESIS__ENDPOINT", format!("http://{closed}")));
    let run = Diagnostics::run(&env, &["--metrics"], RUN).await;
    one_line(
        &run,
        &format!("cinemo diagnostics: cannot reach http://{closed}: "),
    );
    assert!(run.stderr[0].contains("refused"), "{:?}", run.stderr);
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers() {
    let kinesis = Kinesis::with_shards(0).await;
    // Connections are accepted by the kernel and never answered.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = hole.local_addr().expect("addr");
    let mut env = kinesis.reader_env();
    env.push(("CINEMO__KINESIS__ENDPOINT", format!("http://{addr}")));
    env.push(("CINEMO__KINESIS__CALL_TIMEOUT_MS", "500".into()));
    let run = Diagnostics::run(&env, &["--trace", "t", "--follow"], RUN).await;
    one_line(
        &run,
        &format!("cinemo diagnostics: no answer from http://{addr} within kinesis.call_timeout_ms"),
    );
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_does_not_exist() {
    // No endpoint: the region's own, whose name does not resolve.
    let mut env: Vec<(&str, String)> = credentials();
    env.push(("CINEMO__KINESIS__REGION", "xx-nowhere-9".into()));
    env.push(("CINEMO__KINESIS__STREAM_NAME", STREAM.into()));
    env.push(("CINEMO__KINESIS__CALL_TIMEOUT_MS", "2000".into()));
    let run = Diagnostics::run(&env, &["--trace", "t"], RUN).await;
    let endpoint = "https://kinesis.xx-nowhere-9.amazonaws.com";
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.len(), 1, "{:?}", run.stderr);
    // Refused by the resolver at once, or (where lookups hang) no answer
    // within the call timeout: either way the line names the endpoint.
    let line = &run.stderr[0];
    assert!(
        line.starts_with(&format!("cinemo diagnostics: cannot reach {endpoint}: "))
            || line.starts_with(&format!("cinemo diagnostics: no answer from {endpoint} ")),
        "{line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_region_or_stream_name() {
    let kinesis = Kinesis::with_shards(1).await;
    let without = |name: &str| -> Vec<(&'static str, String)> {
        kinesis
            .reader_env()
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect()
    };
    let mut no_credentials = without("AWS_ACCESS_KEY_ID");
    no_credentials.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    for (env, start) in [
        (no_credentials, "cinemo diagnostics: no AWS credentials: "),
        (
            without("CINEMO__KINESIS__REGION"),
            "cinemo diagnostics: no AWS region: set kinesis.region",
        ),
        (
            without("CINEMO__KINESIS__STREAM_NAME"),
            "cinemo diagnostics: kinesis.stream_name is not set",
        ),
    ] {
        let run = Diagnostics::run(&env, &["--trace", "t"], RUN).await;
        one_line(&run, start);
    }
}
