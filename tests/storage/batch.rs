//! Big batches through both tiers: 50,000 items, one bad item, a deadline
//! that cuts the transaction, a repeated Idempotency-Key.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::{Db, Tiers, client, list_all};

pub const N: usize = 50_000;

pub fn customers(n: usize, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"name": format!("{tag}-{i}")}))
        .collect()
}

async fn count(http: &reqwest::Client, tiers: &Tiers) -> usize {
    list_all(http, tiers.internal.url(), "/api/cache")
        .await
        .len()
}

pub async fn run(db: &Db) {
    // Generous deadlines: this suite is about batches, and the stand-in
    // pages through tens of thousands of documents slowly.
    const SLOW_OK: [(&str, &str); 2] = [
        ("CINEMO__STORAGE__TIMEOUT_MS", "30000"),
        ("CINEMO__PUBLIC__INTERNAL_TIMEOUT_MS", "60000"),
    ];
    let http = client();
    let phase = Instant::now();
    let tiers = Tiers::start(
        db,
        &[
            SLOW_OK[0],
            SLOW_OK[1],
            ("CINEMO__BATCH__MAX_ITEMS", "60000"),
        ],
    )
    .await;
    let public = tiers.public.url().to_owned();

    // One bad item, the very last of 50,000: nothing stored.
    let mut items = customers(N, "bad");
    items[N - 1] = json!({"name": 42});
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (400, format!("item {}: name must be a string", N - 1))
    );
    // Too many items.
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .json(&customers(60_001, "many"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("maximum of 60000"));
    assert_eq!(
        count(&http, &tiers).await,
        0,
        "rejected batches stored nothing"
    );

    // A repeated Idempotency-Key stores once.
    const K: usize = 5_000;
    let items = customers(K, "idem");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = http
            .post(format!("{public}/api/customers/batch"))
            .header("Idempotency-Key", format!("batch-suite-{}", db.database))
            .json(&items)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        count(&http, &tiers).await,
        K,
        "the keyed batch was stored once"
    );
    eprintln!(
        "{}: bad item, too many, idempotency in {:?}",
        db.name(),
        phase.elapsed()
    );
    drop(tiers);

    // A deadline that falls inside the transaction: the batch is cut
    // mid-write and rolled back; nothing of it is stored. Not on nx-27017:
    // it keeps an abandoned transaction (its client vanished mid-insert_many)
    // open and later requests hang on it; a real server aborts it when the
    // session ends. Kept for real MongoDB (CINEMO_TEST_MONGODB_URL).
    if matches!(db.kind, crate::harness::Kind::Nx { .. }) {
        eprintln!(
            "{}: SKIPPED the deadline-cut step (stand-in limitation, see docs/storage.md)",
            db.name()
        );
    } else {
        let tiers = Tiers::start(
            db,
            &[
                SLOW_OK[0],
                SLOW_OK[1],
                ("CINEMO__STORAGE__BATCH_TIMEOUT_MS", "10"),
            ],
        )
        .await;
        let r = http
            .post(format!("{}/api/customers/batch", tiers.public.url()))
            .json(&customers(N, "cut"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 504, "{}", r.text().await.unwrap_or_default());
        // The rollback of a dropped transaction finishes in the background.
        let mut n = 0;
        for _ in 0..50 {
            n = count(&http, &tiers).await;
            if n == K {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(n, K, "a batch cut by its deadline stored nothing");
        eprintln!("{}: deadline cut in {:?}", db.name(), phase.elapsed());
        drop(tiers);
    }

    // 50,000 in one call, read back in order.
    let tiers = Tiers::start(db, &SLOW_OK).await;
    let public = tiers.public.url();
    let started = Instant::now();
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .json(&customers(N, "big"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let ids: Vec<String> = r.json::<Value>().await.unwrap()["customerIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    eprintln!(
        "{}: {N} items through the public tier in {:?}",
        db.name(),
        started.elapsed()
    );
    assert_eq!(ids.len(), N);
    let stored = list_all(&http, public, "/api/customers").await;
    assert_eq!(stored.len(), N + K);
    let listed: Vec<&str> = stored.iter().map(|d| d["_id"].as_str().unwrap()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "list is in id order");
    let by_id: HashMap<&str, &str> = stored
        .iter()
        .map(|d| (d["_id"].as_str().unwrap(), d["name"].as_str().unwrap()))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            by_id.get(id.as_str()).copied(),
            Some(format!("big-{i}").as_str()),
            "item {i}"
        );
    }
    let last: Value = http
        .get(format!("{public}/api/customers/{}", ids[N - 1]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["name"], format!("big-{}", N - 1));
    eprintln!("{}: batch suite done in {:?}", db.name(), phase.elapsed());
}
