//! A stream resharded while `--follow` reads it: the closed parents are
//! read to their end and the children from their start, so nothing is
//! lost or read twice; a read that ends afterwards finds every frame too.

use std::time::Duration;

use super::harness::*;

const NAME: &str = r#"{"name":"Ann Smith"}"#;
const TRACE: &str = "reshard-1";

/// 2^126: the middle of shard 0's hash range in a stream of two shards.
const MIDDLE_OF_SHARD_0: &str = "85070591730234615865843651857942052864";

async fn three_creates(base: &str) {
    for _ in 0..3 {
        assert_eq!(create(base, TRACE, NAME).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resharded_during_the_read_loses_nothing() {
    let kinesis = Kinesis::with_shards(2).await;
    let mut app = kinesis.writer().await;
    let base = app.url().to_owned();
    let env = kinesis.reader_env();
    let follow = Diagnostics::start(&env, &["--trace", TRACE, "--follow", "--json"]);
    follow.wait_reading(Duration::from_secs(20)).await;

    three_creates(&base).await;
    // Shard 0 splits into shards 2 and 3 ...
    kinesis
        .client
        .split_shard()
        .stream_name(STREAM)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(MIDDLE_OF_SHARD_0)
        .send()
        .await
        .expect("SplitShard");
    kinesis.wait_active().await;
    three_creates(&base).await;
    // ... then shards 3 and 1 (adjacent ranges) merge into shard 4.
    kinesis
        .client
        .merge_shards()
        .stream_name(STREAM)
        .shard_to_merge("shardId-000000000003")
        .adjacent_shard_to_merge("shardId-000000000001")
        .send()
        .await
        .expect("MergeShards");
    kinesis.wait_active().await;
    three_creates(&base).await;
    app.stop().await;

    let by_shard = kinesis.records_by_shard().await;
    assert_eq!(by_shard.len(), 5, "shards after the reshards");
    assert!(
        by_shard[2..].iter().any(|records| !records.is_empty()),
        "no record reached a child shard"
    );
    let written = trace_frames(by_shard.iter().flatten(), TRACE);
    assert_eq!(written.len(), 18, "{written:#?}");

    // Every frame shows, once.
    for _ in 0..300 {
        if follow.stdout_lines().len() >= written.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = follow.interrupt(Duration::from_secs(5)).await;
    assert!(ended.status.success(), "{ended:?}");
    let mut followed: Vec<LogFrame> = ended.stdout.iter().filter_map(|l| log_frame(l)).collect();
    followed.sort();
    assert_eq!(followed, written, "while following");

    let after =
        Diagnostics::run(&env, &["--trace", TRACE, "--json"], Duration::from_secs(30)).await;
    assert!(after.status.success(), "{after:?}");
    assert!(
        after.stderr[0].contains("(5 shards, us-east-1)"),
        "{:?}",
        after.stderr
    );
    let mut read: Vec<LogFrame> = after.stdout.iter().filter_map(|l| log_frame(l)).collect();
    assert!(read.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    read.sort();
    assert_eq!(read, written, "reading the resharded stream afterwards");
}
