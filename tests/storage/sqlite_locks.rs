//! A locked SQLite file never holds a server thread: the read that meets
//! the lock answers 504 by its deadline, and the other requests on the same
//! worker answer meanwhile.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Db, Kind, client};

const TIMEOUT_MS: u64 = 1000;

/// Takes, from this process, the write locks on every read slot of the
/// database's WAL index (`<db>-shm`, bytes 123-127), as SQLite itself does
/// while it rebuilds the index after a crash: no reader can start until they
/// go. SQLite's own readers then retry for about ten seconds, sleeping in
/// between, whatever their busy timeout says. Held until the file closes.
fn hold_wal_read_locks(db: &Path) -> std::fs::File {
    let shm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{}-shm", db.display()))
        .expect("the WAL index exists once the database was read");
    // SAFETY: a plain fcntl(2) on an open descriptor with a local struct.
    let rc = unsafe {
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = 123;
        lock.l_len = 5;
        libc::fcntl(shm.as_raw_fd(), libc::F_SETLK, &lock)
    };
    assert_eq!(rc, 0, "lock: {}", std::io::Error::last_os_error());
    shm
}

pub async fn run(db: &Db) {
    let Kind::Sqlite { file } = &db.kind else {
        panic!("an SQLite test")
    };
    let internal = crate::common::cinemo("internal")
        .envs(&db.env())
        // One server thread: a read that blocked it would block the rest.
        .env("CINEMO__HTTP__WORKERS", "1")
        .env("CINEMO__STORAGE__TIMEOUT_MS", TIMEOUT_MS.to_string())
        .ready()
        .await;
    let base = internal.internal().to_owned();
    let http = client();
    let r = http
        .post(format!("{base}/api/cache"))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = || http.get(format!("{base}/api/cache/{id}")).send();
    assert_eq!(read().await.unwrap().status(), 200);

    let lock = hold_wal_read_locks(file);
    let started = Instant::now();
    let blocked = tokio::spawn(read());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let probe = Instant::now();
    let live = http
        .get(format!("{base}/api/health/live"))
        .send()
        .await
        .unwrap();
    let waited = probe.elapsed();
    assert_eq!(live.status(), 200);
    assert!(
        waited < Duration::from_millis(300),
        "the server thread was held for {waited:?} by a read of a locked file"
    );
    let blocked = blocked.await.unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(blocked.status(), 504);
    assert_eq!(blocked.text().await.unwrap(), "MongoDB not connected");
    assert!(
        took < Duration::from_millis(TIMEOUT_MS * 2),
        "the read answered after {took:?}, past its {TIMEOUT_MS} ms deadline"
    );

    drop(lock);
    assert_eq!(read().await.unwrap().status(), 200, "reads work again");
}
