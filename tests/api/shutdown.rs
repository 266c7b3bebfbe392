//! SIGTERM during a request: the request still gets its answer, new
//! connections are refused, the process exits 0.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cinemo::telemetry::names::LOG_TIER_DRAINED;

use crate::common::{cinemo, send};

pub(crate) const ID: &str = "5f1d7a3b9c0e4a2b8d6f1e3c";

/// A stand-in internal tier that tells the test when a request arrived and
/// answers only when the test says so.
pub(crate) fn held_internal() -> (std::net::SocketAddr, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        arrived_tx.send(()).unwrap();
        release_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let body = format!(r#"{{"_id":"{ID}","name":"Held","dateCreated":1}}"#);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    (addr, arrived_rx, release_tx)
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let (internal, arrived, release) = held_internal();
    let mut app = cinemo("public")
        .env("CINEMO__PUBLIC__INTERNAL_URL", format!("http://{internal}"))
        // The stand-in above speaks HTTP/1.1 only; draining over HTTP/2
        // is tested against a real internal tier in tier_link.rs.
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", "false")
        .spawn();
    let public = app.public().to_owned();
    let addr = app.public_addr();

    let in_flight = tokio::spawn(send(
        reqwest::Client::new().get(format!("{public}/api/customers/{ID}")),
    ));
    tokio::task::spawn_blocking(move || arrived.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the request never reached the internal tier");

    app.signal("TERM");
    // New connections are refused once draining starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(_) => break,
            Ok(_) if Instant::now() > deadline => {
                panic!("still accepting connections 5 s after SIGTERM")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }

    release.send(()).unwrap();
    let seen = in_flight.await.unwrap();
    assert_eq!(seen.status, 200, "the in-flight request was cut: {seen:?}");
    assert_eq!(
        seen.body,
        format!(r#"{{"_id":"{ID}","name":"Held","dateCreated":1}}"#)
    );

    let status = app.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}\n{}",
        app.logs()
    );
    assert!(app.logs().contains(LOG_TIER_DRAINED), "{}", app.logs());
}

#[test]
fn sigint_stops_an_idle_all_mode_process_cleanly() {
    let mut app = cinemo("all").spawn();
    app.signal("INT");
    let status = app.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", app.logs());
}
