//! Every row of CONTRACT.md as exact status, Content-Type and body bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{self, Seen, cinemo, is_object_id, send};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

enum Body {
    Exact(&'static str),
    /// `{"customerId": "<24 hex>"}` or `{"id": "<24 hex>"}`
    NewId(&'static str),
}

struct Row {
    what: &'static str,
    status: u16,
    content_type: &'static str,
    body: Body,
}

fn check(row: &Row, seen: &Seen, failures: &mut Vec<String>) {
    let body_ok = match &row.body {
        Body::Exact(b) => seen.body == *b,
        Body::NewId(key) => serde_json::from_str::<serde_json::Value>(&seen.body)
            .ok()
            .and_then(|v| {
                let obj = v.as_object()?;
                (obj.len() == 1).then(|| obj.get(*key)?.as_str().map(is_object_id))?
            })
            .unwrap_or(false),
    };
    if seen.status != row.status || seen.content_type != row.content_type || !body_ok {
        failures.push(format!(
            "{}: expected {} {} {:?}, got {} {} {:?}",
            row.what,
            row.status,
            row.content_type,
            match &row.body {
                Body::Exact(b) => b.to_string(),
                Body::NewId(k) => format!("{{\"{k}\":<id>}}"),
            },
            seen.status,
            seen.content_type,
            seen.body
        ));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs the whole table against one wiring of the two tiers.
pub(crate) async fn contract(public: &str, internal: &str) {
    let c = common::client();
    let mut failures = Vec::new();
    let mut row = |what, status, content_type, body, seen: Seen| {
        check(
            &Row {
                what,
                status,
                content_type,
                body,
            },
            &seen,
            &mut failures,
        );
    };

    // public: health
    row(
        "public GET /api/health",
        200,
        TEXT,
        Body::Exact("Frontend healthy"),
        send(c.get(format!("{public}/api/health"))).await,
    );

    // public: create, then read back the exact document
    let before = now_ms();
    let created = send(
        c.post(format!("{public}/api/customers"))
            .header("content-type", "application/json")
            .body(r#"{"name":"Ann Smith"}"#),
    )
    .await;
    let after = now_ms();
    let id = serde_json::from_str::<serde_json::Value>(&created.body)
        .ok()
        .and_then(|v| v["customerId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    row(
        "public POST /api/customers",
        200,
        JSON,
        Body::NewId("customerId"),
        created,
    );

    let read = send(c.get(format!("{public}/api/customers/{id}"))).await;
    let v: serde_json::Value = serde_json::from_str(&read.body).unwrap_or_default();
    let date = v["dateCreated"].as_i64().unwrap_or(0);
    assert!(
        (before..=after).contains(&date),
        "dateCreated {date} not within the request ({before}..={after}): {}",
        read.body
    );
    let expected = format!(r#"{{"_id":"{id}","name":"Ann Smith","dateCreated":{date}}}"#);
    let expected: &'static str = Box::leak(expected.into_boxed_str());
    row(
        "public GET /api/customers/{id}",
        200,
        JSON,
        Body::Exact(expected),
        read,
    );

    // public: error rows
    for bad in [
        "zz",
        "123",
        "5f1d7a3b9c0e4a2b8d6f1e3g",
        "5f1d7a3b9c0e4a2b8d6f1e3c00",
        "%00",
        // The batch route's own path: as an id it is malformed, as it was
        // for the old service (not a 405 from the batch resource).
        "batch",
    ] {
        row(
            "public GET malformed id",
            400,
            TEXT,
            Body::Exact("malformed customerId"),
            send(c.get(format!("{public}/api/customers/{bad}"))).await,
        );
    }
    row(
        "public GET unknown id",
        404,
        TEXT,
        Body::Exact("cacheId not found"),
        send(c.get(format!("{public}/api/customers/aaaaaaaaaaaaaaaaaaaaaaaa"))).await,
    );
    // Bodies with no usable name keep the old text, byte for byte; the
    // others say what is wrong with them; a batch item says the same after
    // its index.
    const MISSING: &str = "customer name missing";
    const NOT_A_STRING: &str = "name must be a string";
    for (route, what, body, text) in [
        ("", "no body", "", MISSING),
        ("", "only whitespace", " \n", MISSING),
        ("", "no name", r#"{"nam":"Ann"}"#, MISSING),
        ("", "empty name", r#"{"name":""}"#, MISSING),
        ("", "blank name", r#"{"name":"  \t "}"#, MISSING),
        ("", "name null", r#"{"name":null}"#, MISSING),
        ("", "array", r#"[{"name":"Ann"}]"#, MISSING),
        ("", "a JSON string", r#""Ann""#, MISSING),
        (
            "",
            "not JSON",
            "name=Ann",
            "invalid JSON body: expected ident at line 1 column 2",
        ),
        (
            "",
            "truncated JSON",
            r#"{"name":"Ann""#,
            "invalid JSON body: EOF while parsing an object at line 1 column 13",
        ),
        (
            "",
            "JSON with something after it",
            r#"{"name":"Ann"} x"#,
            "invalid JSON body: trailing characters at line 1 column 16",
        ),
        ("", "name not a string", r#"{"name":42}"#, NOT_A_STRING),
        (
            "",
            "name an object",
            r#"{"name":{"first":"Ann"}}"#,
            NOT_A_STRING,
        ),
        // JSON.parse keeps the last of a repeated key.
        (
            "",
            "the last name not a string",
            r#"{"name":"Ann","name":7}"#,
            NOT_A_STRING,
        ),
        (
            "/batch",
            "a blank name",
            r#"[{"name":"Ann"},{"name":" "},{"name":1}]"#,
            "item 1: customer name missing",
        ),
        (
            "/batch",
            "a name not a string",
            r#"[{"name":"Ann"},{"name":1}]"#,
            "item 1: name must be a string",
        ),
    ] {
        let seen = send(
            c.post(format!("{public}/api/customers{route}"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        let what: &'static str =
            Box::leak(format!("public POST /api/customers{route} ({what})").into_boxed_str());
        row(what, 400, TEXT, Body::Exact(text), seen);
    }

    // A repeated `name` keeps its last value, as JSON.parse did; other
    // fields are ignored.
    let repeated = send(
        c.post(format!("{public}/api/customers"))
            .body(r#"{"name":7,"name":"Ann","x":[1,{"name":2}],"name":"Bob"}"#),
    )
    .await;
    let repeated_id = serde_json::from_str::<serde_json::Value>(&repeated.body)
        .ok()
        .and_then(|v| v["customerId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    row(
        "public POST /api/customers (repeated name)",
        200,
        JSON,
        Body::NewId("customerId"),
        repeated,
    );
    let stored = send(c.get(format!("{public}/api/customers/{repeated_id}"))).await;
    let name = serde_json::from_str::<serde_json::Value>(&stored.body).unwrap_or_default()["name"]
        .as_str()
        .map(str::to_owned);
    assert_eq!(name.as_deref(), Some("Bob"), "{stored:?}");

    // internal
    row(
        "internal GET /api/health",
        200,
        TEXT,
        Body::Exact("Healthy"),
        send(c.get(format!("{internal}/api/health"))).await,
    );
    row(
        "internal GET /api/cache/{id} (created through public)",
        200,
        JSON,
        Body::Exact(expected),
        send(c.get(format!("{internal}/api/cache/{id}"))).await,
    );
    let doc = r#"{"z":1,"a":[1.0,{"b":null}],"big":12345678901234567890,"s":"é\"\u00e9"}"#;
    let stored = send(
        c.post(format!("{internal}/api/cache"))
            .header("content-type", "application/json")
            .body(doc),
    )
    .await;
    let cache_id = serde_json::from_str::<serde_json::Value>(&stored.body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    row(
        "internal POST /api/cache",
        200,
        JSON,
        Body::NewId("id"),
        stored,
    );
    let round_trip: &'static str =
        Box::leak(format!(r#"{{"_id":"{cache_id}",{}"#, &doc[1..]).into_boxed_str());
    row(
        "internal GET /api/cache/{id} round-trips the document exactly",
        200,
        JSON,
        Body::Exact(round_trip),
        send(c.get(format!("{internal}/api/cache/{cache_id}"))).await,
    );
    row(
        "internal GET /api/cache/{id} accepts upper-case hex",
        200,
        JSON,
        Body::Exact(round_trip),
        send(c.get(format!("{internal}/api/cache/{}", cache_id.to_uppercase()))).await,
    );
    for bad in ["xyz", "batch"] {
        row(
            "internal GET malformed id",
            400,
            TEXT,
            Body::Exact("malformed cacheId"),
            send(c.get(format!("{internal}/api/cache/{bad}"))).await,
        );
    }
    row(
        "internal GET unknown id",
        404,
        TEXT,
        Body::Exact("cacheId not found"),
        send(c.get(format!("{internal}/api/cache/bbbbbbbbbbbbbbbbbbbbbbbb"))).await,
    );
    for (what, body) in [
        ("absent", ""),
        ("not JSON", "hello"),
        ("array", "[1,2]"),
        ("number", "42"),
        ("string", "\"x\""),
        ("null", "null"),
        ("two objects", "{}{}"),
    ] {
        let seen = send(
            c.post(format!("{internal}/api/cache"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        let what: &'static str =
            Box::leak(format!("internal POST /api/cache ({what})").into_boxed_str());
        row(what, 400, TEXT, Body::Exact("missing body"), seen);
    }
    row(
        "internal POST /api/cache with a client _id",
        400,
        TEXT,
        Body::Exact("_id is assigned by the server"),
        send(
            c.post(format!("{internal}/api/cache"))
                .body(r#"{"_id":"x"}"#),
        )
        .await,
    );

    // Express's default routing, which old clients may rely on: any case,
    // one trailing slash, and HEAD for every GET route (no body).
    for (what, url) in [
        (
            "public GET, trailing slash",
            format!("{public}/api/customers/{id}/"),
        ),
        (
            "public GET, upper case",
            format!("{public}/API/Customers/{}", id.to_uppercase()),
        ),
    ] {
        row(
            what,
            200,
            JSON,
            Body::Exact(expected),
            send(c.get(url)).await,
        );
    }
    for (what, url) in [
        (
            "internal GET, trailing slash",
            format!("{internal}/api/cache/{cache_id}/"),
        ),
        (
            "internal GET, upper case",
            format!("{internal}/API/CACHE/{cache_id}"),
        ),
    ] {
        row(
            what,
            200,
            JSON,
            Body::Exact(round_trip),
            send(c.get(url)).await,
        );
    }
    row(
        "public HEAD /api/customers/{id}",
        200,
        JSON,
        Body::Exact(""),
        send(c.head(format!("{public}/api/customers/{id}"))).await,
    );
    for (base, healthy) in [(public, "Frontend healthy"), (internal, "Healthy")] {
        row(
            "GET /api/health/, trailing slash",
            200,
            TEXT,
            Body::Exact(healthy),
            send(c.get(format!("{base}/api/health/"))).await,
        );
        row(
            "HEAD /api/health",
            200,
            TEXT,
            Body::Exact(""),
            send(c.head(format!("{base}/api/health"))).await,
        );
    }
    // OPTIONS as Express answered it: 200, the route's methods in `Allow`
    // and as an HTML body (the old routes: `GET,HEAD` or `POST`, here with
    // the methods cinemo added); a path no route serves stays a 404.
    for (what, url, allow) in [
        (
            "public OPTIONS /api/health",
            format!("{public}/api/health"),
            "GET,HEAD",
        ),
        (
            "public OPTIONS /api/customers",
            format!("{public}/api/customers"),
            "POST,GET,HEAD",
        ),
        (
            "public OPTIONS /api/customers/{id}",
            format!("{public}/api/customers/{id}"),
            "GET,HEAD,DELETE",
        ),
        (
            "internal OPTIONS /api/cache",
            format!("{internal}/api/cache"),
            "POST,GET,HEAD",
        ),
        (
            "internal OPTIONS /api/cache/{id}, any case",
            format!("{internal}/API/Cache/{cache_id}/"),
            "GET,HEAD,DELETE",
        ),
        (
            "internal OPTIONS /api/version",
            format!("{internal}/api/version"),
            "GET,HEAD",
        ),
    ] {
        let answer = c
            .request(reqwest::Method::OPTIONS, &url)
            .send()
            .await
            .expect("OPTIONS");
        assert_eq!(
            common::header(&answer, "allow"),
            allow,
            "{what}: the Allow header"
        );
        row(
            what,
            200,
            "text/html; charset=utf-8",
            Body::Exact(allow),
            common::seen(answer).await,
        );
    }
    row(
        "OPTIONS on an unknown route",
        404,
        TEXT,
        Body::Exact("not found"),
        send(c.request(reqwest::Method::OPTIONS, format!("{public}/nope"))).await,
    );

    // Only one slash is optional, as in Express.
    row(
        "two trailing slashes",
        404,
        TEXT,
        Body::Exact("not found"),
        send(c.get(format!("{public}/api/health//"))).await,
    );

    // routes every tier serves
    for base in [public, internal] {
        row(
            "GET /api/health/live",
            200,
            TEXT,
            Body::Exact("OK"),
            send(c.get(format!("{base}/api/health/live"))).await,
        );
        row(
            "unknown route",
            404,
            TEXT,
            Body::Exact("not found"),
            send(c.get(format!("{base}/nope"))).await,
        );
        let version = send(c.get(format!("{base}/api/version"))).await;
        assert_eq!(version.status, 200);
        assert_eq!(version.content_type, JSON);
        let v: serde_json::Value = serde_json::from_str(&version.body).expect("version is JSON");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        for key in ["git_sha", "channel", "mode"] {
            assert!(
                v[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} missing: {}",
                version.body
            );
        }
    }
    // Like the old Express services: an unrouted method is a 404.
    row(
        "DELETE /api/health",
        404,
        TEXT,
        Body::Exact("not found"),
        send(c.delete(format!("{public}/api/health"))).await,
    );

    assert!(
        failures.is_empty(),
        "contract rows failed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn two_processes_wired_as_in_production() {
    let internal = cinemo("internal").spawn();
    let public = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", internal.internal())
        .spawn();
    assert!(
        public.internal.is_none() && internal.public.is_none(),
        "each process runs one tier"
    );
    contract(public.public(), internal.internal()).await;
}

#[tokio::test]
async fn both_tiers_in_one_process() {
    let app = cinemo("all").spawn();
    contract(app.public(), app.internal()).await;
    let v: serde_json::Value = common::client()
        .get(format!("{}/api/version", app.public()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mode"], "all");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = cinemo("all").dir(dir.clone()).spawn();
    let c = common::client();
    let created: serde_json::Value = c
        .post(format!("{}/api/customers", app.public()))
        .body(r#"{"name":"Persistent"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(app);
    let app = cinemo("all").dir(dir).spawn();
    let id = created["customerId"].as_str().unwrap();
    let read = send(c.get(format!("{}/api/customers/{id}", app.public()))).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert!(read.body.contains("\"name\":\"Persistent\""), "{read:?}");
}
