//! `--follow`: frames written after it started show within 2 s, the
//! history of `--since` comes first, and Ctrl-C stops it at once.

use std::time::{Duration, Instant};

use super::harness::*;

const NAME: &str = r#"{"name":"Ann Smith"}"#;
const SHOWN_WITHIN: Duration = Duration::from_secs(2);

/// How long after `written` a line containing `text` was printed.
async fn shown_after(follow: &Diagnostics, text: &str, written: Instant) -> Duration {
    let at = follow
        .wait_stdout(text, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("{text:?} never shown: {:?}", follow.stdout_lines()));
    at.saturating_duration_since(written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_written_after_it_started_shows_within_2_s_and_ctrl_c_stops_it() {
    let kinesis = Kinesis::with_shards(2).await;
    let app = kinesis.writer().await;
    let follow = Diagnostics::start(&kinesis.reader_env(), &["--trace", "live-1", "--follow"]);
    follow.wait_reading(Duration::from_secs(20)).await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, id) = create(app.url(), "live-1", NAME).await;
        assert_eq!(status, 200);
        // The frames were queued before the answer came.
        let answered = Instant::now();
        for text in [format!("created customer {id}"), format!("stored {id}")] {
            let delay = shown_after(&follow, &text, answered).await;
            assert!(
                delay <= SHOWN_WITHIN,
                "{text:?} shown {delay:?} after the request"
            );
        }
        ids.push(id);
    }

    let ended = follow.interrupt(Duration::from_secs(5)).await;
    assert!(ended.status.success(), "{ended:?}");
    assert!(
        ended.took < Duration::from_secs(1),
        "Ctrl-C took {:?}",
        ended.took
    );
    // Each frame once.
    assert_eq!(ended.stdout.len(), 4, "{:?}", ended.stdout);
    assert!(
        ended.stderr[0].starts_with(&format!(
            "cinemo diagnostics: following stream {STREAM} (2 shards, us-east-1) from now; Ctrl-C stops"
        )),
        "{:?}",
        ended.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_since_prints_the_history_first() {
    let kinesis = Kinesis::with_shards(2).await;
    let app = kinesis.writer().await;
    let (_, before) = create(app.url(), "live-2", NAME).await;
    // Wait until the frames are in the stream, as a reader that ends sees them.
    let env = kinesis.reader_env();
    let mut seen = 0;
    for _ in 0..100 {
        let run = Diagnostics::run(&env, &["--trace", "live-2"], Duration::from_secs(30)).await;
        seen = run.stdout.len();
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen, 2,
        "the first request's frames never reached the stream"
    );

    let follow = Diagnostics::start(&env, &["--trace", "live-2", "--follow", "--since", "5m"]);
    follow.wait_reading(Duration::from_secs(20)).await;
    let (_, after) = create(app.url(), "live-2", NAME).await;
    let answered = Instant::now();
    let delay = shown_after(&follow, &format!("created customer {after}"), answered).await;
    assert!(delay <= SHOWN_WITHIN, "shown {delay:?} after the request");
    let ended = follow.interrupt(Duration::from_secs(5)).await;
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(ended.stdout.len(), 4, "{:?}", ended.stdout);
    assert!(
        ended.stdout[..2].iter().all(|l| l.contains(&before)),
        "{:?}",
        ended.stdout
    );
    assert!(
        ended.stdout[2..].iter().all(|l| l.contains(&after)),
        "{:?}",
        ended.stdout
    );
}
