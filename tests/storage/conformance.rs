//! What every backend must do the same way, written once.

use serde_json::{Value, json};

use crate::harness::{Db, Tiers, client, list_all};

/// A document that exercises what JSON text can say and a parsed value may
/// lose: key order, integers beyond 2^53 and 2^64, `1.0`, unicode, escapes.
const TRICKY: &str = r#"{"z":1,"a":{"y":[1,2.5,"x",null,true],"b":{}},"big53":9007199254740993,"huge":12345678901234567890123,"one":1.0,"exp":1e2,"u":"é 日本 😀","uesc":"\u00e9","esc":"q\"b\\s\n\t\u0001/","":""}"#;

/// What a SQL backend returns: the text as sent, `_id` first.
fn sql_expected(id: &str) -> String {
    format!("{{\"_id\":\"{id}\",{}", &TRICKY[1..])
}

/// What MongoDB returns (see docs/storage.md): numbers as JavaScript prints
/// them (`1.0` -> `1`, `1e2` -> `100`, beyond i64 a double), `\u00e9`
/// decoded; key order, strings and i64 integers kept.
fn mongo_expected(id: &str) -> String {
    format!(
        "{{\"_id\":\"{id}\",{}",
        &r#"{"z":1,"a":{"y":[1,2.5,"x",null,true],"b":{}},"big53":9007199254740993,"huge":1.2345678901234568e+22,"one":1,"exp":100,"u":"é 日本 😀","uesc":"é","esc":"q\"b\\s\n\t\u0001/","":""}"#
            [1..]
    )
}

pub async fn run(db: &Db) {
    let tiers = Tiers::start(db, &[]).await;
    let http = client();
    let internal = tiers.internal.url();
    let public = tiers.public.url();

    // health
    let r = http
        .get(format!("{internal}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "Healthy".into())
    );
    let r = http
        .get(format!("{public}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "Frontend healthy".into())
    );

    // round trip, exact on SQL backends, the documented mapping on MongoDB
    let r = http
        .post(format!("{internal}/api/cache"))
        .body(TRICKY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = http
        .get(format!("{internal}/api/cache/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    let expected = if db.is_mongo() {
        mongo_expected(&id)
    } else {
        sql_expected(&id)
    };
    assert_eq!(
        back.text().await.unwrap(),
        expected,
        "{} round trip",
        db.name()
    );
    // The same through a batch and through list.
    let r = http
        .post(format!("{internal}/api/cache/batch"))
        .body(format!("[{TRICKY}]"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bid = r.json::<Value>().await.unwrap()["ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let back = http
        .get(format!("{internal}/api/cache/{bid}"))
        .send()
        .await
        .unwrap();
    let expected = if db.is_mongo() {
        mongo_expected(&bid)
    } else {
        sql_expected(&bid)
    };
    assert_eq!(
        back.text().await.unwrap(),
        expected,
        "{} batch round trip",
        db.name()
    );

    // Valid JSON objects BSON cannot hold: MongoDB refuses them with a 400
    // that says why, never a 500. The SQL backends keep the text as sent
    // (docs/storage.md).
    if db.is_mongo() {
        for (body, why) in [
            (r#"{"k\u0000":1}"#, "NUL"),
            (r#"{"a":1e400}"#, "number out of range"),
            (r#"{"a":"\ud800"}"#, "lone UTF-16 surrogate"),
        ] {
            // In a batch the reason names the item (0-based) to fix.
            for (path, sent, prefix) in [
                ("/api/cache", body.to_owned(), "document cannot be stored: "),
                (
                    "/api/cache/batch",
                    format!(r#"[{{"fine":true}},{body}]"#),
                    "document cannot be stored: item 1: ",
                ),
            ] {
                let r = http
                    .post(format!("{internal}{path}"))
                    .body(sent)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let text = r.text().await.unwrap();
                assert!(
                    status == 400
                        && text.starts_with(prefix)
                        && text.contains(why)
                        && !text.contains("line 1 column"),
                    "{} {path} {body}: {status} {text}",
                    db.name()
                );
            }
        }
    }

    // a customer through the public tier
    let r = http
        .post(format!("{public}/api/customers"))
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cid = r.json::<Value>().await.unwrap()["customerId"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc: Value = http
        .get(format!("{public}/api/customers/{cid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["_id"], cid.as_str());
    assert_eq!(doc["name"], "Ann");
    assert!(doc["dateCreated"].is_i64());

    // get: missing and malformed
    let r = http
        .get(format!("{internal}/api/cache/000000000000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (404, "cacheId not found".into())
    );
    let r = http
        .get(format!("{internal}/api/cache/nothex"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // list: id order, pagination, bounds
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .json(
            &(0..25)
                .map(|i| json!({"name": format!("p{i}")}))
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ids: Vec<String> = r.json::<Value>().await.unwrap()["customerIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 25);
    let mut walked = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page: Value = http
            .get(format!("{public}/api/customers?limit=7&after={after}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        walked.extend(items.iter().map(|d| d["_id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(n) => {
                assert_eq!(
                    Some(n),
                    items.last().and_then(|d| d["_id"].as_str()),
                    "next is the last id of the page"
                );
                after = n.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(walked.len(), 28, "3 documents before the batch, 25 in it");
    assert_eq!(pages, 4);
    let mut sorted = walked.clone();
    sorted.sort();
    assert_eq!(walked, sorted, "list is in id order");
    for id in &ids {
        assert!(walked.contains(id));
    }
    let first: Value = http
        .get(format!("{internal}/api/cache"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        28,
        "default limit (100) covers all"
    );
    assert!(first["next"].is_null());
    for bad in ["limit=0", "limit=1001", "limit=x", "after=123", "limit=-1"] {
        for base in [internal, public] {
            let path = if base == internal {
                "/api/cache"
            } else {
                "/api/customers"
            };
            let r = http
                .get(format!("{base}{path}?{bad}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path}?{bad}");
        }
    }

    // delete
    let victim = &ids[3];
    let r = http
        .delete(format!("{public}/api/customers/{victim}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("{public}/api/customers/{victim}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .delete(format!("{public}/api/customers/{victim}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .delete(format!("{internal}/api/cache/{}", ids[4]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .delete(format!("{internal}/api/cache/bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(list_all(&http, internal, "/api/cache").await.len(), 26);

    // batch all-or-nothing on validation, both tiers
    let r = http
        .post(format!("{internal}/api/cache/batch"))
        .body(r#"[{"a":1},{"b":2},{"c":3},[4],{"e":5}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (400, "item 3: not a JSON object".into())
    );
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .body(r#"[{"name":"a"},{"name":"b"},{"name":""}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (400, "item 2: customer name missing".into())
    );
    for bad in ["", "{}", "[]", "[1", "{\"name\":\"a\"}"] {
        let r = http
            .post(format!("{public}/api/customers/batch"))
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    assert_eq!(
        list_all(&http, internal, "/api/cache").await.len(),
        26,
        "nothing stored by rejected batches"
    );

    // idempotency
    let body = json!([{"name": "i1"}, {"name": "i2"}]);
    let first = http
        .post(format!("{public}/api/customers/batch"))
        .header("Idempotency-Key", "conformance-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = http
        .post(format!("{public}/api/customers/batch"))
        .header("Idempotency-Key", "conformance-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = http
        .post(format!("{public}/api/customers/batch"))
        .header("Idempotency-Key", "conformance-1")
        .json(&json!([{"name": "someone else"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    assert!(other.text().await.unwrap().contains("different payload"));
    let r = http
        .post(format!("{public}/api/customers/batch"))
        .header("Idempotency-Key", "has space")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        list_all(&http, internal, "/api/cache").await.len(),
        28,
        "the key stored its batch once"
    );
}
