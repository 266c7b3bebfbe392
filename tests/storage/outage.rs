//! The database goes away during a run of writes and comes back: every
//! acknowledged write is still there, requests during the outage got 504
//! within the storage timeout (+20%), the tiers recovered without a restart,
//! and a batch cut by the failure stored nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::batch::customers;
use crate::harness::{Db, Tiers, client, list_all};

const TIMEOUT_MS: u64 = 1000;
/// The batch in flight when the database goes.
const BATCH: usize = 20_000;

struct Outcome {
    status: u16,
    elapsed: Duration,
    id: Option<String>,
}

async fn writer(public: String, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let http = client();
    let mut out = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        let r = http
            .post(format!("{public}/api/customers"))
            .json(&json!({"name": format!("w{i}")}))
            .send()
            .await
            .expect("the public tier answers during an outage");
        let status = r.status().as_u16();
        let id = if status == 200 {
            r.json::<Value>()
                .await
                .ok()
                .and_then(|v| v["customerId"].as_str().map(str::to_owned))
        } else {
            None
        };
        out.push(Outcome {
            status,
            elapsed: started.elapsed(),
            id,
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out
}

pub async fn run(db: &mut Db) {
    assert!(db.can_stop());
    let timeout = TIMEOUT_MS.to_string();
    let tiers = Tiers::start(
        db,
        &[
            ("CINEMO__STORAGE__TIMEOUT_MS", timeout.as_str()),
            ("CINEMO__STORAGE__CONNECT_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    let (public_pid, internal_pid) = (tiers.public.pid(), tiers.internal.pid());
    let http = client();
    let public = tiers.public.url().to_owned();
    let internal = tiers.internal.url().to_owned();
    let before = list_all(&http, &internal, "/api/cache").await.len();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(writer(public.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    // A big batch in flight when the database goes.
    let batch = {
        let http = http.clone();
        let public = public.clone();
        tokio::spawn(async move {
            let r = http
                .post(format!("{public}/api/customers/batch"))
                .json(&customers(BATCH, "cut"))
                .send()
                .await
                .expect("batch answered");
            r.status().as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    db.stop().await;
    let outage_started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if !matches!(db.kind, crate::harness::Kind::Sqlite { .. }) {
        // A locked SQLite file still serves reads, so readiness stays up.
        let r = http
            .get(format!("{internal}/api/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "readiness reports the outage");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    db.start().await;
    let outage = outage_started.elapsed();

    // Recovery without a restart: a write succeeds within 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recovery_failures = 0;
    loop {
        let r = http
            .post(format!("{public}/api/customers"))
            .json(&json!({"name": "after"}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        recovery_failures += 1;
        assert!(
            Instant::now() < deadline,
            "the tier did not recover within 15 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for w in writers {
        outcomes.extend(w.await.unwrap());
    }
    let batch_status = batch.await.unwrap();

    let mut tiers = tiers;
    assert!(
        tiers.public.is_running() && tiers.internal.is_running(),
        "no tier restarted"
    );
    assert_eq!(
        (tiers.public.pid(), tiers.internal.pid()),
        (public_pid, internal_pid)
    );

    let acked: Vec<&String> = outcomes.iter().filter_map(|o| o.id.as_ref()).collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
    eprintln!(
        "{}: {} writes, {} acknowledged, {} failed during a {:?} outage; batch answered {batch_status}",
        db.name(),
        outcomes.len(),
        acked.len(),
        failed.len(),
        outage
    );
    assert!(!failed.is_empty(), "some writes fell into the outage");
    let limit = Duration::from_millis(TIMEOUT_MS * 12 / 10);
    for o in &failed {
        assert_eq!(
            o.status, 504,
            "a write during the outage answered {}",
            o.status
        );
        assert!(
            o.elapsed <= limit,
            "a write during the outage took {:?} (> {limit:?})",
            o.elapsed
        );
    }
    for id in &acked {
        let r = http
            .get(format!("{public}/api/customers/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged write {id} was lost");
    }
    // The batch: all or nothing. A 200 means all; a 504 may hide a commit
    // that finished as the deadline fired (docs/storage.md), so then either.
    let rows = list_all(&http, &internal, "/api/cache").await;
    let batch_rows = rows
        .iter()
        .filter(|d| d["name"].as_str().is_some_and(|n| n.starts_with("cut-")))
        .count();
    if batch_status == 200 {
        assert_eq!(batch_rows, BATCH, "batch answered 200 but is not all there");
    } else {
        assert!(
            batch_rows == 0 || batch_rows == BATCH,
            "batch answered {batch_status} and left {batch_rows} of {BATCH} rows: not all or nothing"
        );
    }
    // Single writes: every acknowledged one is there (checked above). One
    // that answered 504 may still have committed (a deadline cannot undo a
    // statement the database already runs), so at most that many extra.
    let others = rows.len() - batch_rows;
    let singles = before + acked.len() + 1;
    assert!(
        (singles..=singles + failed.len() + recovery_failures).contains(&others),
        "{others} single rows, expected {singles} plus at most {} writes that answered 504",
        failed.len() + recovery_failures
    );
}
