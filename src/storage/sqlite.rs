use std::cell::RefCell;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use rusqlite::{OpenFlags, OptionalExtension};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use thread_local::ThreadLocal;

use super::{BatchOutcome, Store, StoreError, ids_to_json, replay_or_conflict, stored_rows};
use crate::domain::clock::now_ms;
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::StoreLimits;

/// The embedded default: one SQLite file in WAL mode.
///
/// Writes, lists and batches go through sqlx's pool (each connection a
/// worker thread, so a write waiting on the file lock never blocks a server
/// thread). Point reads, the hot path, skip that hop: each server thread
/// keeps its own read-only connection and runs the primary-key lookup in
/// place, which costs microseconds on a warm page cache (see
/// docs/performance.md for the figures).
pub struct SqliteStore {
    pool: SqlitePool,
    readers: Option<Readers>,
}

/// One read-only connection per thread that reads, opened on first use.
/// In WAL mode readers never wait for the writer, so a lookup only ever
/// waits on the disk itself.
struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    conns: ThreadLocal<RefCell<Option<rusqlite::Connection>>>,
}

const GET_BODY: &str = "SELECT body FROM documents WHERE id = ?1";

impl Readers {
    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(conn)
    }

    fn get(&self, id: &str) -> Result<Option<String>, StoreError> {
        let cell = self.conns.get_or(|| RefCell::new(None));
        // Never re-entered: nothing below awaits or calls back into us.
        let mut slot = cell.borrow_mut();
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.open().map_err(classify_read)?),
        };
        let result = conn
            .prepare_cached(GET_BODY)
            .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional());
        result.map_err(|e| {
            // A connection that failed for any reason but a busy file is
            // dropped, so the next read starts from a fresh one.
            if !is_busy(&e) {
                *slot = None;
            }
            classify_read(e)
        })
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn classify_read(e: rusqlite::Error) -> StoreError {
    let unreachable = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::SystemIoFailure)
    );
    if is_busy(&e) || unreachable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(e.into())
    }
}

impl SqliteStore {
    pub async fn open(url: &str, settings: &StoreLimits) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("storage.url {url:?} is not a valid SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed write survives a process crash;
            // only an OS crash or power cut can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_millis(settings.timeout_ms))
            .foreign_keys(true);
        // The file sqlx opens, for the read connections.
        let path = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {url}"))?;
        sqlx::migrate!("src/storage/migrations/sqlite")
            .run(&pool)
            .await
            .context("running SQLite migrations")?;
        // An in-memory database exists only inside sqlx's connections, so
        // reads stay on the pool there.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let readers = (!in_memory).then(|| Readers {
            path,
            busy_timeout: Duration::from_millis(settings.timeout_ms),
            conns: ThreadLocal::new(),
        });
        Ok(SqliteStore { pool, readers })
    }
}

/// Rows per multi-row INSERT: 3 parameters a row stays far below SQLite's
/// 32,766-parameter limit, and every full chunk reuses one cached prepared
/// statement.
const CHUNK_ROWS: usize = 1000;

fn multi_row_insert(rows: usize) -> String {
    let mut sql = String::with_capacity(60 + rows * 10);
    sql.push_str("INSERT INTO documents (id, body, created_at) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?,?,?)" } else { ",(?,?,?)" });
    }
    sql
}

fn classify(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(ref db) if db.message().contains("database is locked") => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Other(other.into()),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError> {
        let now = now_ms();
        let result = sqlx::query("INSERT INTO documents (id, body, created_at) VALUES (?, ?, ?)")
            .bind(id.as_str().to_owned())
            .bind(doc.as_str().to_owned())
            .bind(now)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Duplicate(id.clone()))
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn insert_batch(
        &self,
        items: &[(DocId, Document)],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError> {
        // IMMEDIATE takes the write lock up front: two batches with the same
        // key then serialise on it instead of both reading "unseen" and one
        // failing on the lock upgrade.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)?;
        let ids: Vec<DocId> = items.iter().map(|(id, _)| id.clone()).collect();
        let now = now_ms();
        if let Some(key) = key {
            let prior: Option<(String, String)> =
                sqlx::query_as("SELECT fingerprint, ids FROM idempotency_keys WHERE key = ?")
                    .bind(key.key().to_owned())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(classify)?;
            if let Some((fingerprint, stored)) = prior {
                return replay_or_conflict(key, &fingerprint, &stored);
            }
            sqlx::query("INSERT INTO idempotency_keys (key, fingerprint, ids, created_at) VALUES (?, ?, ?, ?)")
                .bind(key.key().to_owned())
                .bind(key.fingerprint().to_owned())
                .bind(ids_to_json(&ids))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        for chunk in items.chunks(CHUNK_ROWS) {
            let sql = multi_row_insert(chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, doc) in chunk {
                query = query
                    .bind(id.as_str().to_owned())
                    .bind(doc.as_str().to_owned())
                    .bind(now);
            }
            match query.execute(&mut *tx).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(StoreError::Other(anyhow::anyhow!(
                        "a batch id collided: {}",
                        db.message()
                    )));
                }
                Err(e) => return Err(classify(e)),
            }
        }
        // Dropping `tx` on any early return above rolls everything back.
        tx.commit().await.map_err(classify)?;
        Ok(BatchOutcome::Stored(ids))
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, body FROM documents WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        stored_rows(rows)
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM documents WHERE id = ?")
            .bind(id.as_str().to_owned())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        if let Some(readers) = &self.readers {
            let body = readers.get(id.as_str())?;
            return Ok(body.map(Document::from_stored));
        }
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM documents WHERE id = ?")
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        Ok(row.map(|(body,)| Document::from_stored(body)))
    }

    async fn health_check(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
