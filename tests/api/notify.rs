//! The binary speaks sd_notify: READY=1 once serving, watchdog pings, and
//! STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::cinemo;

#[test]
fn ready_watchdog_and_stopping_reach_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();

    let mut app = cinemo("all")
        .env("NOTIFY_SOCKET", socket_path.to_str().unwrap())
        .env("WATCHDOG_USEC", "200000")
        .spawn();

    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && seen
            .iter()
            .filter(|m: &&String| m.contains("WATCHDOG=1"))
            .count()
            < 2
    {
        let n = socket.recv(&mut buf).expect("no notification from cinemo");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        seen.first().is_some_and(|m| m.contains("READY=1")),
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "{seen:?}"
    );

    app.signal("TERM");
    let stopping = loop {
        let n = socket.recv(&mut buf).expect("no STOPPING=1 after SIGTERM");
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if message.contains("STOPPING=1") {
            break message;
        }
    };
    assert!(stopping.contains("STOPPING=1"));
    assert_eq!(app.wait_exit(Duration::from_secs(10)).code(), Some(0));
}
