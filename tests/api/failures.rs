//! The old public tier hung forever when the internal tier was down. cinemo
//! answers within its configured timeout with a 5xx and a short text.

use std::time::{Duration, Instant};

use crate::common::{self, cinemo, closed_port, send};

const ID: &str = "5f1d7a3b9c0e4a2b8d6f1e3c";

#[tokio::test]
async fn internal_refusing_connections_gives_502_quickly() {
    let public = cinemo("public")
        .env(
            "CINEMO__PUBLIC__INTERNAL_URL",
            format!("http://{}", closed_port()),
        )
        .spawn();
    let c = common::client();
    // Each answer within the connect timeout (1 s): a refused connection
    // is tried again for at most 650 ms, in case the balancer sends the
    // next one to a live host.
    let quick = async |request: reqwest::RequestBuilder| {
        let started = Instant::now();
        let seen = send(request).await;
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}: {seen:?}",
            started.elapsed()
        );
        seen
    };
    let started = Instant::now();
    let read = quick(c.get(format!("{}/api/customers/{ID}", public.public()))).await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (502, "internal service unreachable")
    );
    let create = quick(
        c.post(format!("{}/api/customers", public.public()))
            .body(r#"{"name":"A"}"#),
    )
    .await;
    assert_eq!(
        (create.status, create.body.as_str()),
        (502, "internal service unreachable")
    );
    let health = quick(c.get(format!("{}/api/health", public.public()))).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (503, "Frontend unhealthy: internal service unreachable")
    );
    let live = send(c.get(format!("{}/api/health/live", public.public()))).await;
    assert_eq!(
        live.status, 200,
        "liveness must not depend on the internal tier"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Accepts TCP connections and never answers: the worst kind of outage.
fn blackhole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (addr, handle)
}

#[tokio::test]
async fn internal_that_never_answers_gives_504_within_the_timeout() {
    let (addr, _hole) = blackhole();
    let timeout = Duration::from_millis(2_000);
    let public = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", format!("http://{addr}"))
        .env(
            "CINEMO__PUBLIC__INTERNAL_TIMEOUT_MS",
            timeout.as_millis().to_string(),
        )
        .spawn();
    let c = common::client();
    for request in [
        c.get(format!("{}/api/customers/{ID}", public.public())),
        c.post(format!("{}/api/customers", public.public()))
            .body(r#"{"name":"A"}"#),
    ] {
        let started = Instant::now();
        let seen = send(request).await;
        let took = started.elapsed();
        assert_eq!(
            (seen.status, seen.body.as_str()),
            (504, "internal service timed out")
        );
        assert!(took >= timeout, "answered before the timeout: {took:?}");
        assert!(
            took <= timeout.mul_f64(1.2),
            "took {took:?}, more than the timeout plus 20%"
        );
    }
}

#[tokio::test]
async fn storage_that_does_not_answer_gives_504_mongodb_not_connected() {
    let app = cinemo("all")
        .env("CINEMO__STORAGE__TIMEOUT_MS", "500")
        .spawn();
    let c = common::client();
    let mut locker = common::lock_sqlite(&app.dir.path().join("cinemo.db")).await;

    let started = Instant::now();
    let direct = send(c.post(format!("{}/api/cache", app.internal())).body("{}")).await;
    assert_eq!(
        (direct.status, direct.body.as_str()),
        (504, "MongoDB not connected")
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "took {:?}",
        started.elapsed()
    );
    let through_public = send(
        c.post(format!("{}/api/customers", app.public()))
            .body(r#"{"name":"A"}"#),
    )
    .await;
    assert_eq!(
        (through_public.status, through_public.body.as_str()),
        (504, "storage unavailable")
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let recovered = send(
        c.post(format!("{}/api/customers", app.public()))
            .body(r#"{"name":"A"}"#),
    )
    .await;
    assert_eq!(
        recovered.status, 200,
        "no recovery after the lock was released: {recovered:?}"
    );
}

/// An internal tier stand-in over HTTP/1.1 that answers every request with
/// `status` and a short body, as a proxy or an overloaded tier would.
fn answering(status: &'static str) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 4\r\n\r\nbusy");
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn internal_answering_503_or_500_gives_503_or_502_with_the_contract_texts() {
    for (internal_says, public_says) in [
        (
            "503 Service Unavailable",
            (503, "internal service unavailable"),
        ),
        ("500 Internal Server Error", (502, "internal service error")),
    ] {
        let public = cinemo("public")
            .env(
                "CINEMO__PUBLIC__INTERNAL_URL",
                format!("http://{}", answering(internal_says)),
            )
            .env("CINEMO__PUBLIC__INTERNAL_HTTP2", "false")
            .spawn();
        let c = common::client();
        let read = send(c.get(format!("{}/api/customers/{ID}", public.public()))).await;
        let create = send(
            c.post(format!("{}/api/customers", public.public()))
                .body(r#"{"name":"A"}"#),
        )
        .await;
        for seen in [read, create] {
            assert_eq!(
                (seen.status, seen.body.as_str()),
                public_says,
                "internal said {internal_says}"
            );
            assert_eq!(seen.content_type, "text/plain; charset=utf-8");
        }
        let health = send(c.get(format!("{}/api/health", public.public()))).await;
        assert_eq!(health.status, 503, "internal said {internal_says}");
    }
}

/// A row changed behind cinemo's back (here: bodies that are not JSON
/// objects) is an error that says so in the log, a 500 to the client, on
/// a read and on a list; never a body cut out of the stored text.
#[tokio::test]
async fn a_stored_row_that_is_no_object_is_a_500_not_a_cut_body() {
    use sqlx::Connection;
    let app = cinemo("internal").spawn();
    let db = app.dir.path().join("cinemo.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO documents (id, body, created_at) VALUES ($1, '', 0), ($2, 'oops', 0)")
        .bind(ID)
        .bind("5f1d7a3b9c0e4a2b8d6f1e3d")
        .execute(&mut conn)
        .await
        .unwrap();
    let c = common::client();
    for id in [ID, "5f1d7a3b9c0e4a2b8d6f1e3d"] {
        let read = send(c.get(format!("{}/api/cache/{id}", app.internal()))).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (500, "internal error"),
            "{id}"
        );
    }
    let list = send(c.get(format!("{}/api/cache", app.internal()))).await;
    assert_eq!((list.status, list.body.as_str()), (500, "internal error"));
    assert!(
        app.logs()
            .contains(&format!("the stored document {ID} is not a JSON object")),
        "{}",
        app.logs()
    );
}
