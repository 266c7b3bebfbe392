//! Oversized requests get a 4xx, never a 500, a hang or a crash.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{self, cinemo, send};

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = cinemo("all")
        .env("CINEMO__PUBLIC__MAX_BODY_BYTES", "1024")
        .env("CINEMO__INTERNAL__MAX_BODY_BYTES", "2048")
        .spawn();
    let c = common::client();
    let big_name = format!(r#"{{"name":"{}"}}"#, "x".repeat(2_000));
    let seen = send(
        c.post(format!("{}/api/customers", app.public()))
            .body(big_name.clone()),
    )
    .await;
    assert_eq!(seen.status, 413, "{seen:?}");
    let seen = send(
        c.post(format!("{}/api/cache", app.internal()))
            .body(big_name),
    )
    .await;
    assert_eq!(seen.status, 200, "under the internal limit: {seen:?}");
    let seen = send(
        c.post(format!("{}/api/cache", app.internal()))
            .body(format!(r#"{{"a":"{}"}}"#, "y".repeat(4_000))),
    )
    .await;
    assert_eq!(seen.status, 413, "{seen:?}");
    // Still serving afterwards.
    let ok = send(
        c.post(format!("{}/api/customers", app.public()))
            .body(r#"{"name":"small"}"#),
    )
    .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn names_over_the_limit_get_400() {
    let app = cinemo("all").spawn();
    let name = "é".repeat(1_025);
    let seen = send(
        common::client()
            .post(format!("{}/api/customers", app.public()))
            .body(format!(r#"{{"name":"{name}"}}"#)),
    )
    .await;
    assert_eq!(
        (seen.status, seen.body.as_str()),
        (400, "customer name too long")
    );
}

/// actix-http's fixed limits: a request head of at most 128 KiB and at most
/// 96 header fields (docs/configuration.md). The ALB in front allows less.
fn head_response(app: &crate::common::Cinemo, head: &str) -> String {
    let mut stream = TcpStream::connect(app.public_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(head.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn oversized_headers_get_431() {
    let app = cinemo("all").spawn();
    let huge = format!(
        "GET /api/health/live HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let response = head_response(&app, &huge);
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "got: {:?}",
        &response[..response.len().min(200)]
    );

    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let response = head_response(
        &app,
        &format!("GET /api/health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
    );
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "got: {:?}",
        &response[..response.len().min(200)]
    );

    let fine = head_response(
        &app,
        "GET /api/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine:?}");
}
