//! Point reads in place on the server thread: the hot path, kept free of
//! the hop to another thread (docs/performance.md has the figures), and
//! never allowed to wait.
//!
//! Each server thread keeps its own read-only connection. In WAL mode a
//! reader does not wait for the writer, but SQLite can still make it wait:
//! on a lock of the file (the busy handler, here none: `busy_timeout` 0)
//! and, when another process holds the WAL index's read locks, in a retry
//! loop that sleeps up to about ten seconds whatever the busy handler says.
//! So these connections use a VFS whose sleep returns at once: SQLite's
//! retries then end within microseconds, the read answers "busy", and
//! `SqliteStore::get` hands it to the pool, where waiting is bounded by the
//! operation's deadline and costs no server thread.

use std::cell::RefCell;
use std::ffi::{CStr, c_int};
use std::sync::OnceLock;

use rusqlite::{Connection, OpenFlags, OptionalExtension, ffi};

use super::errors::is_busy;
use thread_local::ThreadLocal;

use crate::storage::sql;

/// The name the no-wait VFS is registered under.
const NO_WAIT_VFS: &CStr = c"cinemo-no-wait";

pub struct Readers {
    file: String,
    conns: ThreadLocal<RefCell<Option<Connection>>>,
}

/// Why an in-place read did not answer.
pub enum NotRead {
    /// The file is locked (or its WAL index is being rebuilt): try the
    /// pool, which can wait.
    Busy,
    Failed(rusqlite::Error),
}

impl Readers {
    /// Readers of `file`; fails when the no-wait VFS cannot be registered.
    pub fn new(file: String) -> anyhow::Result<Self> {
        register_no_wait_vfs()?;
        Ok(Readers {
            file,
            conns: ThreadLocal::new(),
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags_and_vfs(&self.file, flags, NO_WAIT_VFS)?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(conn)
    }

    /// The stored body of `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<String>, NotRead> {
        let cell = self.conns.get_or(|| RefCell::new(None));
        // Never re-entered: nothing below awaits or calls back into us.
        let mut slot = cell.borrow_mut();
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.open().map_err(not_read)?),
        };
        let result = conn
            .prepare_cached(sql::GET)
            .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional());
        result.map_err(|e| {
            let e = not_read(e);
            // A connection that failed for any reason but a busy file is
            // dropped, so the next read starts from a fresh one.
            if matches!(e, NotRead::Failed(_)) {
                *slot = None;
            }
            e
        })
    }
}

fn not_read(e: rusqlite::Error) -> NotRead {
    if is_busy(&e) {
        NotRead::Busy
    } else {
        NotRead::Failed(e)
    }
}

/// The process's default VFS with a sleep that does not sleep, registered
/// once (not as the default) under `NO_WAIT_VFS`.
fn register_no_wait_vfs() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            /// Claims to have slept the time asked, at once.
            unsafe extern "C" fn no_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
                micros
            }
            // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS (the
            // unix one here), which lives as long as the process; its copy
            // is leaked so it lives as long too, and SQLite only reads it.
            // The copy shares the default VFS's methods and app data, which
            // take the VFS they are called through as an argument and read
            // nothing from it that the copy changes (name, next, sleep).
            unsafe {
                let default = ffi::sqlite3_vfs_find(std::ptr::null());
                if default.is_null() {
                    return Err("SQLite has no default VFS".to_owned());
                }
                let mut vfs = *default;
                vfs.zName = NO_WAIT_VFS.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                vfs.xSleep = Some(no_sleep);
                let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0);
                if rc == ffi::SQLITE_OK {
                    Ok(())
                } else {
                    Err(format!("cannot register a SQLite VFS (error {rc})"))
                }
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
