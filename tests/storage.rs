//! Storage integration tests: one conformance suite, a batch suite and an
//! outage suite, each run against every backend with real servers started
//! here (SQLite file, a throwaway PostgreSQL cluster, nx-27017 as the
//! MongoDB stand-in, and a real MongoDB when CINEMO_TEST_MONGODB_URL is set).
//! cinemo runs as two processes (public and internal), as in production.
//!
//! A server that cannot be found fails the test when `CI` is set, and is
//! skipped with a loud `SKIPPED:` line on stderr otherwise. The real-MongoDB
//! tests are compiled as ignored (reported as skipped) unless
//! CINEMO_TEST_MONGODB_URL was set when they were built (build.rs).

mod common;

#[path = "storage/harness.rs"]
mod harness;

#[path = "storage/conformance.rs"]
mod conformance;

#[path = "storage/batch.rs"]
mod batch;

#[path = "storage/outage.rs"]
mod outage;

#[path = "storage/sqlite_locks.rs"]
mod sqlite_locks;

use harness::Db;

/// The suites start servers and push 50,000-item batches; on a 2-core box
/// they are more reliable (and their timing assertions meaningful) one at a
/// time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! per_backend {
    ($suite:ident as $tests:ident: $($(#[$attr:meta])* $name:ident => $db:expr),* $(,)?) => {
        mod $tests {
            use super::*;
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let _one_at_a_time = SERIAL.lock().await;
                    let Some(mut db) = $db.await else { return };
                    super::$suite::run(&mut db).await;
                }
            )*
        }
    };
}

per_backend!(conformance as conformance_on:
    sqlite => Db::sqlite(),
    postgres => Db::postgres(),
    nx27017 => Db::nx27017(),
    #[cfg_attr(not(cinemo_real_mongodb), ignore = "set CINEMO_TEST_MONGODB_URL to test a real MongoDB")]
    real_mongodb => Db::real_mongodb(),
);

per_backend!(batch as batch_on:
    sqlite => Db::sqlite(),
    postgres => Db::postgres(),
    nx27017 => Db::nx27017(),
    #[cfg_attr(not(cinemo_real_mongodb), ignore = "set CINEMO_TEST_MONGODB_URL to test a real MongoDB")]
    real_mongodb => Db::real_mongodb(),
);

per_backend!(outage as outage_on:
    sqlite => Db::sqlite(),
    postgres => Db::postgres(),
    nx27017 => Db::nx27017(),
);

/// The concurrency cap is the HTTP layer's, the same on every backend: one
/// batch held up by a locked SQLite file keeps the only slot, the next
/// batch is told 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_beyond_the_cap_get_429() {
    let _one_at_a_time = SERIAL.lock().await;
    let Some(mut db) = Db::sqlite().await else {
        return;
    };
    let tiers = harness::Tiers::start(
        &db,
        &[
            ("CINEMO__BATCH__MAX_CONCURRENT", "1"),
            ("CINEMO__BATCH__RETRY_AFTER_SECS", "7"),
            ("CINEMO__STORAGE__TIMEOUT_MS", "3000"),
        ],
    )
    .await;
    db.stop().await;
    let http = harness::client();
    let url = format!("{}/api/cache/batch", tiers.internal.url());
    // Two at once: whichever gets the slot waits on the lock (3 s), the
    // other is turned away at once.
    let send = |body: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let r = http
                .post(url)
                .body(body)
                .send()
                .await
                .expect("batch answered");
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.as_bytes().to_vec());
            (r.status().as_u16(), retry)
        })
    };
    let (a, b) = (send(r#"[{"a":1}]"#), send(r#"[{"b":2}]"#));
    let mut answers = vec![a.await.expect("task"), b.await.expect("task")];
    answers.sort();
    db.start().await;
    assert_eq!(answers[0], (429, Some(b"7".to_vec())), "{answers:?}");
    assert_eq!(answers[1].0, 504, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_sqlite_file_never_holds_a_server_thread() {
    let _one_at_a_time = SERIAL.lock().await;
    let Some(db) = Db::sqlite().await else {
        return;
    };
    sqlite_locks::run(&db).await;
}
