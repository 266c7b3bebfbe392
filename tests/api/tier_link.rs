//! The link between the tiers: the public tier speaks HTTP/2 to the
//! internal tier by default (HTTP/1.1 with `public.internal_http2 = false`,
//! and always for batches), replaces its connections after
//! `public.internal_connection_max_age_secs`, recovers when the internal
//! tier restarts, and lets a draining internal tier finish its in-flight
//! requests and exit within its deadline.

use std::time::{Duration, Instant};

use crate::common::{self, cinemo, send};

/// Creates a customer through the public tier; returns its id.
async fn create(c: &reqwest::Client, public: &str, name: &str) -> String {
    let seen = send(
        c.post(format!("{public}/api/customers"))
            .body(format!(r#"{{"name":"{name}"}}"#)),
    )
    .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    let v: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    v["customerId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_contract_holds_over_http1_between_the_tiers() {
    let internal = cinemo("internal").spawn();
    let public = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", internal.internal())
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", "false")
        .spawn();
    assert!(
        public.logs().contains(r#""http2":false"#),
        "{}",
        public.logs()
    );
    super::contract::contract(public.public(), internal.internal()).await;
}

#[tokio::test]
async fn the_internal_listener_speaks_http1_and_h2c() {
    let internal = cinemo("internal").spawn();
    let live = format!("{}/api/health/live", internal.internal());
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (client, version) in [
        (h1, reqwest::Version::HTTP_11),
        (h2, reqwest::Version::HTTP_2),
    ] {
        let response = client.get(&live).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), version);
    }
}

/// The internal tier crashes and a new one starts on the same address and
/// data: the public tier's next requests find their old connections closed
/// and reconnect, without a single failed request once the new tier is up.
async fn recovers_after_internal_crash(http2: bool) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut first = cinemo("internal").dir(dir.clone()).spawn();
    let internal_url = first.internal().to_owned();
    let listen = internal_url.trim_start_matches("http://").to_owned();
    let public = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", &internal_url)
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", http2.to_string())
        .spawn();
    let c = common::client();
    let id = create(&c, public.public(), "Before").await;
    // Warm every worker's connections, so the restart leaves stale ones.
    for _ in 0..8 {
        let seen = send(c.get(format!("{}/api/customers/{id}", public.public()))).await;
        assert_eq!(seen.status, 200, "{seen:?}");
    }

    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    let down = send(c.get(format!("{}/api/customers/{id}", public.public()))).await;
    assert_eq!(
        (down.status, down.body.as_str()),
        (502, "internal service unreachable")
    );

    let _second = cinemo("internal")
        .dir(dir)
        .env("CINEMO__INTERNAL__LISTEN", &listen)
        .spawn();
    for i in 0..8 {
        let seen = send(c.get(format!("{}/api/customers/{id}", public.public()))).await;
        assert_eq!(seen.status, 200, "read {i} after the restart: {seen:?}");
        assert!(seen.body.contains(r#""name":"Before""#), "{seen:?}");
    }
    create(&c, public.public(), "After").await;
}

#[tokio::test]
async fn the_public_tier_reconnects_after_the_internal_tier_crashes_over_http2() {
    recovers_after_internal_crash(true).await;
}

#[tokio::test]
async fn the_public_tier_reconnects_after_the_internal_tier_crashes_over_http1() {
    recovers_after_internal_crash(false).await;
}

/// A rolling restart of the internal tier: SIGTERM reaches it while a
/// create is in flight over HTTP/2 (held by a stuck SQLite writer). The
/// create still gets its 200, and because the public tier replaces its
/// connections after their max age, the internal tier's connections close
/// and it exits 0 long before its own shutdown deadline would cut them.
#[tokio::test]
async fn a_draining_internal_tier_finishes_in_flight_requests_over_http2() {
    const DEADLINE_SECS: u64 = 20;
    let mut internal = cinemo("internal")
        .env("CINEMO__STORAGE__TIMEOUT_MS", "15000")
        .env("CINEMO__SHUTDOWN__TIMEOUT_SECS", DEADLINE_SECS.to_string())
        .spawn();
    let public = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", internal.internal())
        .env("CINEMO__PUBLIC__INTERNAL_CONNECTION_MAX_AGE_SECS", "2")
        .env("CINEMO__PUBLIC__INTERNAL_TIMEOUT_MS", "15000")
        .spawn();
    let c = common::client();
    create(&c, public.public(), "Warm").await;

    let mut locker = common::lock_sqlite(&internal.dir.path().join("cinemo.db")).await;

    let in_flight = tokio::spawn(send(
        c.post(format!("{}/api/customers", public.public()))
            .body(r#"{"name":"In flight"}"#),
    ));
    // The create is waiting on the lock inside the internal tier.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !in_flight.is_finished(),
        "the create did not wait on the lock"
    );

    internal.signal("TERM");
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    let seen = in_flight.await.unwrap();
    assert_eq!(seen.status, 200, "the in-flight create was cut: {seen:?}");
    let status = internal.wait_exit(Duration::from_secs(DEADLINE_SECS + 10));
    assert_eq!(status.code(), Some(0), "{}", internal.logs());
    let took = stopped_at.elapsed();
    assert!(
        took < Duration::from_secs(DEADLINE_SECS / 2),
        "the internal tier took {took:?} to drain: the public tier held its connections open"
    );
}

/// Behind the internal tier's load balancer a new connection can land on a
/// target that has just died and is not yet marked unhealthy: it is
/// refused before a byte of the request was sent. The public tier connects
/// again, the balancer sends the new connection to a live target, and the
/// customer never sees the dead one.
async fn a_refused_connection_is_made_again(http2: bool) {
    let internal = cinemo("internal").spawn();
    let balancer = common::Balancer::refusing(common::addr_of(internal.internal()));
    let public = cinemo("public")
        .env(
            "CINEMO__PUBLIC__INTERNAL_URL",
            format!("http://{}", balancer.addr),
        )
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", http2.to_string())
        .ready()
        .await;
    // The create's first connection is refused; the balancer takes
    // connections from 150 ms on, well inside the connect timeout (1 s).
    balancer.open(Duration::from_millis(150), 0);
    let c = common::client();
    let id = create(&c, public.public(), "Refused first").await;
    let seen = send(c.get(format!("{}/api/customers/{id}", public.public()))).await;
    assert_eq!(seen.status, 200, "{seen:?}");
}

#[tokio::test]
async fn a_refused_connection_to_the_internal_tier_is_made_again_over_http2() {
    a_refused_connection_is_made_again(true).await;
}

#[tokio::test]
async fn a_refused_connection_to_the_internal_tier_is_made_again_over_http1() {
    a_refused_connection_is_made_again(false).await;
}

/// An internal host dies with requests in flight on the public tier's
/// connection to it. A read changes nothing, so the public tier sends it
/// once more on a new connection (which the balancer gives a live host)
/// and the customer gets the document; a create is never sent twice, since
/// the dead host may have stored it.
async fn request_in_flight_on_a_dying_host(http2: bool, read: bool) -> common::Seen {
    let internal = cinemo("internal").spawn();
    let c = common::client();
    let stored = send(
        c.post(format!("{}/api/cache", internal.internal()))
            .body(r#"{"name":"Still here"}"#),
    )
    .await;
    assert_eq!(stored.status, 200, "{stored:?}");
    let id = serde_json::from_str::<serde_json::Value>(&stored.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let balancer = common::Balancer::refusing(common::addr_of(internal.internal()));
    let public = cinemo("public")
        .env(
            "CINEMO__PUBLIC__INTERNAL_URL",
            format!("http://{}", balancer.addr),
        )
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", http2.to_string())
        // One worker: the request goes out on the first connection.
        .env("CINEMO__HTTP__WORKERS", "1")
        .ready()
        .await;
    balancer.open_dying_under_the_first_request();
    if read {
        send(c.get(format!("{}/api/customers/{id}", public.public()))).await
    } else {
        send(
            c.post(format!("{}/api/customers", public.public()))
                .body(r#"{"name":"Maybe stored"}"#),
        )
        .await
    }
}

#[tokio::test]
async fn a_read_whose_internal_host_dies_under_it_is_sent_again_over_http2() {
    let seen = request_in_flight_on_a_dying_host(true, true).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(seen.body.contains("Still here"), "{seen:?}");
}

#[tokio::test]
async fn a_read_whose_internal_host_dies_under_it_is_sent_again_over_http1() {
    let seen = request_in_flight_on_a_dying_host(false, true).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(seen.body.contains("Still here"), "{seen:?}");
}

#[tokio::test]
async fn a_create_whose_internal_host_dies_under_it_is_not_sent_again() {
    let seen = request_in_flight_on_a_dying_host(true, false).await;
    assert_eq!(
        (seen.status, seen.body.as_str()),
        (502, "internal service unreachable")
    );
}
