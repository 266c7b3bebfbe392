//! The binary speaks sd_notify: READY=1 once serving, watchdog pings, and
//! STOPPING=1 as soon as a stop begins, while requests are still draining.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use super::shutdown::{ID, held_internal};
use crate::common::{cinemo, send};

/// The next notification, or None when none comes within `wait`.
fn next(socket: &UnixDatagram, wait: Duration) -> Option<String> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn ready_watchdog_and_stopping_reach_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let (internal, arrived, release) = held_internal();

    let mut app = cinemo("public")
        .env("NOTIFY_SOCKET", socket_path.to_str().unwrap())
        .env("WATCHDOG_USEC", "200000")
        .env("CINEMO__PUBLIC__INTERNAL_URL", format!("http://{internal}"))
        // The stand-in speaks HTTP/1.1 only.
        .env("CINEMO__PUBLIC__INTERNAL_HTTP2", "false")
        .ready()
        .await;

    let (socket, seen) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline
            && seen
                .iter()
                .filter(|m: &&String| m.contains("WATCHDOG=1"))
                .count()
                < 2
        {
            seen.push(next(&socket, Duration::from_secs(15)).expect("no notification from cinemo"));
        }
        (socket, seen)
    })
    .await
    .unwrap();
    assert!(
        seen.first().is_some_and(|m| m.contains("READY=1")),
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "{seen:?}"
    );

    // A request in flight, held at the internal tier.
    let in_flight = tokio::spawn(send(
        reqwest::Client::new().get(format!("{}/api/customers/{ID}", app.public())),
    ));
    tokio::task::spawn_blocking(move || arrived.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the request never reached the internal tier");

    app.signal("TERM");
    // STOPPING=1 comes at once, not when the drain is over: systemd then
    // knows the service is going while it still finishes its requests.
    let stopping = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(message) = next(&socket, deadline.saturating_duration_since(Instant::now()))
        {
            if message.contains("STOPPING=1") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(stopping, "no STOPPING=1 within 5 s of SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "STOPPING=1 came only after the in-flight request was answered"
    );

    release.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap().status, 200);
    assert_eq!(app.wait_exit(Duration::from_secs(10)).code(), Some(0));
}
