//! Throttling and expired iterators, which kinesalite never produces on
//! its own (it throttles no reader, and its iterators expire after the same
//! five minutes as Kinesis's): tests/common/kinesalite.js fails every n-th
//! call with Kinesis's error code, and the reader must wait them out and
//! lose or repeat nothing.

use std::time::Duration;

use super::harness::*;

const NAME: &str = r#"{"name":"Ann Smith"}"#;
const THROTTLED: &str = "ProvisionedThroughputExceededException";
const EXPIRED: &str = "ExpiredIteratorException";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_expired_iterators_are_waited_out() {
    let kinesis = Kinesis::with_faults(
        2,
        // Each a few times: a fixed every-n-th schedule can fall in step
        // with the polls and hit one shard on every call, and its backoff
        // would stay at its ceiling.
        &[
            "GetRecords:ProvisionedThroughputExceededException:3:6",
            "GetRecords:ExpiredIteratorException:4:4",
            "GetShardIterator:ProvisionedThroughputExceededException:3:3",
        ],
    )
    .await;
    let mut app = kinesis.writer().await;
    let env = kinesis.reader_env();
    let follow = Diagnostics::start(&env, &["--trace", "faults-1", "--follow", "--json"]);
    follow.wait_reading(Duration::from_secs(30)).await;
    for round in 0..3 {
        for _ in 0..2 {
            assert_eq!(create(app.url(), "faults-1", NAME).await.0, 200);
        }
        // Spread over several polls of the follower.
        if round < 2 {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    app.stop().await;
    let written = trace_frames(
        kinesis.records_by_shard().await.iter().flatten(),
        "faults-1",
    );
    assert_eq!(written.len(), 12);

    for _ in 0..300 {
        if follow.stdout_lines().len() >= written.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = follow.interrupt(Duration::from_secs(5)).await;
    assert!(ended.status.success(), "{ended:?}");
    let mut followed: Vec<LogFrame> = ended.stdout.iter().filter_map(|l| log_frame(l)).collect();
    followed.sort();
    assert_eq!(followed, written, "while following");

    let run = Diagnostics::run(
        &env,
        &["--trace", "faults-1", "--json"],
        Duration::from_secs(60),
    )
    .await;
    assert!(run.status.success(), "{run:?}");
    let mut read: Vec<LogFrame> = run.stdout.iter().filter_map(|l| log_frame(l)).collect();
    assert!(read.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    read.sort();
    assert_eq!(read, written, "a read that ends");
    // Throttling is routine: nothing about it on stderr.
    assert_eq!(run.stderr.len(), 2, "{:?}", run.stderr);

    let k = &kinesis.kinesalite;
    for (operation, code) in [
        ("GetRecords", THROTTLED),
        ("GetRecords", EXPIRED),
        ("GetShardIterator", THROTTLED),
    ] {
        assert!(
            k.faults_made(operation, code) > 0,
            "no {operation} {code} was made"
        );
    }
}
