//! Opening SQLite connections: where the file is (from `storage.url`), how
//! each connection is set up, and the schema migrations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use crate::domain::clock::now_ms;

/// The migrations in order; the database's `PRAGMA user_version` says how
/// many have run. Each is safe to run again (`IF NOT EXISTS`), so a file
/// written before the version was tracked is brought up to date too.
const MIGRATIONS: [&str; 2] = [
    include_str!("../migrations/sqlite/0001_documents.sql"),
    include_str!("../migrations/sqlite/0002_batches.sql"),
];

/// Where a `storage.url` points.
#[derive(Debug, Clone)]
pub struct Database {
    /// A SQLite URI filename (`file:...`), opened with `SQLITE_OPEN_URI`.
    uri: String,
    /// The file itself, for connections that open it their own way (the
    /// in-place readers); `None` for an in-memory database.
    pub file: Option<String>,
}

impl Database {
    /// `sqlite://PATH` or `sqlite:PATH` (relative to the working directory;
    /// `sqlite:///abs/path` is absolute), with SQLite's URI parameters
    /// (`?mode=rwc`, ...); `sqlite::memory:` (or `mode=memory`) is a
    /// database in this process's memory, shared by its connections.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            bail!("storage.url {url:?} is not a SQLite URL (sqlite://PATH)");
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            bail!("storage.url {url:?} names no file");
        }
        let memory = path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
        if memory {
            // One name per store, so two stores in one process (tests) do
            // not share a database.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            return Ok(Database {
                uri: format!("file:cinemo-memory-{n}?mode=memory&cache=shared"),
                file: None,
            });
        }
        let mut uri = String::from("file:");
        for c in path.chars() {
            match c {
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                '%' => uri.push_str("%25"),
                c => uri.push(c),
            }
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        Ok(Database {
            uri,
            file: Some(path.to_owned()),
        })
    }

    /// A connection for writes, lists and batches: waits up to
    /// `busy_timeout` for the file's lock.
    pub fn open(&self, busy_timeout: Duration) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.uri, flags)?;
        conn.busy_timeout(busy_timeout)?;
        // NORMAL in WAL mode: a committed write survives a process crash;
        // only an OS crash or power cut can lose the last transactions.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        // `now()` of the shared statements (storage/sql.rs), in the unit of
        // the `created_at` column.
        conn.create_scalar_function("now", 0, FunctionFlags::SQLITE_UTF8, |_| Ok(now_ms()))?;
        Ok(conn)
    }

    /// WAL mode (readers never wait for the writer) and the schema, once at
    /// start-up.
    pub fn prepare(&self, busy_timeout: Duration) -> anyhow::Result<()> {
        let mut conn = self
            .open(busy_timeout)
            .with_context(|| format!("cannot open SQLite database {}", self.uri))?;
        if self.file.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .context("switching SQLite to WAL mode")?;
            if !mode.eq_ignore_ascii_case("wal") {
                bail!(
                    "SQLite cannot use WAL mode for {} (it chose {mode})",
                    self.uri
                );
            }
        }
        let tx = conn.transaction().context("running SQLite migrations")?;
        let done: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let done = usize::try_from(done).unwrap_or(0);
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(done) {
            tx.execute_batch(migration)
                .with_context(|| format!("SQLite migration {}", i + 1))?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
        tx.commit().context("running SQLite migrations")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_or_memory() {
        let db = Database::from_url("sqlite://cinemo.db").unwrap();
        assert_eq!(
            (db.uri.as_str(), db.file.as_deref()),
            ("file:cinemo.db", Some("cinemo.db"))
        );
        let db = Database::from_url("sqlite:///var/lib/cinemo/c.db?mode=rwc").unwrap();
        assert_eq!(db.uri, "file:/var/lib/cinemo/c.db?mode=rwc");
        assert_eq!(db.file.as_deref(), Some("/var/lib/cinemo/c.db"));
        let db = Database::from_url("sqlite:/tmp/a#b%c.db").unwrap();
        assert_eq!(db.uri, "file:/tmp/a%23b%25c.db");
        assert!(
            Database::from_url("sqlite::memory:")
                .unwrap()
                .file
                .is_none()
        );
        for bad in ["postgres://x", "sqlite://", "cinemo.db"] {
            assert!(Database::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn migrations_run_once_and_again_on_an_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let db = Database::from_url(&format!("sqlite://{}", path.display())).unwrap();
        db.prepare(Duration::from_secs(1)).unwrap();
        // As a file from before the version was tracked.
        let conn = db.open(Duration::from_secs(1)).unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        conn.execute(
            crate::storage::sql::INSERT,
            ["5f1d7a3b9c0e4a2b8d6f1e3c", "{}"],
        )
        .unwrap();
        drop(conn);
        db.prepare(Duration::from_secs(1)).unwrap();
        let conn = db.open(Duration::from_secs(1)).unwrap();
        let (version, rows, created): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), count(*), max(created_at) FROM documents",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((version, rows), (MIGRATIONS.len() as i64, 1));
        assert!(
            created > 1_577_836_800_000,
            "created_at is epoch ms: {created}"
        );
    }
}
