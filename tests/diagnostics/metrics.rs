//! `--metrics`: the six counters summed per minute and operation, as the
//! frames count them (every answer but 200 is a failure).

use std::time::{Duration, UNIX_EPOCH};

use super::harness::*;

const RUN: Duration = Duration::from_secs(30);

/// `(operation, attempts, successes, failures)`.
type Total = (String, u64, u64, u64);

/// The totals of each operation over every row, and the minutes in the
/// order printed.
fn sums(stdout: &[String]) -> (Vec<Total>, Vec<String>) {
    assert_eq!(
        stdout.first().map(String::as_str),
        Some("MINUTE             OPERATION       ATTEMPTS  SUCCESSES  FAILURES")
    );
    let mut totals: Vec<Total> = Vec::new();
    let mut minutes = Vec::new();
    for (i, row) in stdout[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(cells.len() >= 5, "{row:?}");
        let operation = if i % 2 == 0 {
            "createCustomer"
        } else {
            "readCustomer"
        };
        assert_eq!(cells[1], operation, "{row:?}");
        let minute = cells[0].to_owned();
        if i % 2 == 0 {
            minutes.push(minute);
        } else {
            assert_eq!(minutes.last(), Some(&minute), "{row:?}");
        }
        let n = |c: &str| c.parse::<u64>().unwrap_or_else(|_| panic!("{row:?}"));
        match totals.iter_mut().find(|t| t.0 == operation) {
            Some(t) => {
                t.1 += n(cells[2]);
                t.2 += n(cells[3]);
                t.3 += n(cells[4]);
            }
            None => totals.push((operation.into(), n(cells[2]), n(cells[3]), n(cells[4]))),
        }
    }
    (totals, minutes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_come_back_per_minute() {
    let kinesis = Kinesis::with_shards(2).await;
    let mut app = kinesis.writer().await;
    let base = app.url().to_owned();
    let (status, id) = create(&base, "", r#"{"name":"Ann Smith"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(create(&base, "", "{}").await.0, 400);
    assert_eq!(read(&base, "", &id).await, 200);
    assert_eq!(read(&base, "", "aaaaaaaaaaaaaaaaaaaaaaaa").await, 404);
    assert_eq!(read(&base, "", "not-an-id").await, 400);
    app.stop().await;
    let after = now_ms() + 1;
    while now_ms() <= after {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let env = kinesis.reader_env();
    let run = Diagnostics::run(&env, &["--metrics"], RUN).await;
    assert!(run.status.success(), "{run:?}");
    let (totals, minutes) = sums(&run.stdout);
    assert_eq!(
        totals,
        [
            ("createCustomer".to_owned(), 2, 1, 1),
            ("readCustomer".to_owned(), 3, 1, 2),
        ]
    );
    // The last 15 minutes, minute by minute, the one going on marked.
    assert_eq!(minutes.len(), 16, "{:?}", run.stdout);
    assert!(minutes.is_sorted(), "{minutes:?}");
    assert!(
        run.stdout.last().unwrap().ends_with("  partial"),
        "{:?}",
        run.stdout
    );

    // From after the requests: every counter 0.
    let since = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(after as u64))
        .to_string();
    let later = Diagnostics::run(&env, &["--metrics", "--since", &since], RUN).await;
    assert!(later.status.success(), "{later:?}");
    let (totals, _) = sums(&later.stdout);
    assert!(
        totals.iter().all(|t| (t.1, t.2, t.3) == (0, 0, 0)),
        "{:?}",
        later.stdout
    );
}
