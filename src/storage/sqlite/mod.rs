//! The embedded default: one SQLite file in WAL mode, through rusqlite.
//!
//! Point reads run in place on the server thread and never wait
//! (`readers`); everything that may wait on the file's lock runs on a
//! bounded pool off the server threads (`pool`). Both speak to SQLite the
//! same way and their errors are classified once (`classify`).

mod connect;
mod errors;
mod pool;
mod readers;

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::sql::{self, ids_to_json, replay_or_conflict, stored_document, stored_rows};
use super::{BatchOutcome, Store, StoreError};
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::StoreLimits;
use connect::Database;
use errors::{classify, is_unique_violation};
use pool::Pool;
use readers::{NotRead, Readers};

pub struct SqliteStore {
    pool: Pool,
    /// None for an in-memory database, which exists only inside the pool's
    /// connections.
    readers: Option<Readers>,
}

impl SqliteStore {
    pub async fn open(url: &str, limits: &StoreLimits) -> anyhow::Result<Self> {
        let database = Database::from_url(url)?;
        let busy_timeout = Duration::from_millis(limits.timeout_ms);
        let prepared = database.clone();
        tokio::task::spawn_blocking(move || prepared.prepare(busy_timeout)).await??;
        let readers = database.file.clone().map(Readers::new).transpose()?;
        let pool = Pool::new(
            database,
            limits.max_connections,
            Duration::from_millis(limits.connect_timeout_ms),
            busy_timeout,
        );
        Ok(SqliteStore { pool, readers })
    }
}

/// The file `url` names, as an absolute path, or that it is in memory.
pub fn location(url: &str) -> String {
    match Database::from_url(url).map(|d| d.file) {
        Ok(Some(file)) => std::path::absolute(&file)
            .map(|p| p.display().to_string())
            .unwrap_or(file),
        Ok(None) => "in memory (gone when the process stops)".to_owned(),
        Err(_) => url.to_owned(),
    }
}

/// Rows per multi-row INSERT: 2 parameters a row stays far below SQLite's
/// 32,766-parameter limit, and every full chunk reuses one cached prepared
/// statement.
const CHUNK_ROWS: usize = 1000;

fn multi_row_insert(rows: usize) -> String {
    let mut sql = String::with_capacity(60 + rows * 16);
    sql.push_str("INSERT INTO documents (id, body, created_at) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?,?,now())"
        } else {
            ",(?,?,now())"
        });
    }
    sql
}

/// One batch in one `BEGIN IMMEDIATE` transaction: the write lock is taken
/// up front, so two batches with the same key serialise on it instead of
/// both reading "unseen" and one failing on the lock upgrade.
fn insert_batch(
    conn: &mut rusqlite::Connection,
    items: &[(DocId, Document)],
    key: Option<&IdempotencyKey>,
) -> Result<BatchOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(classify)?;
    let ids: Vec<DocId> = items.iter().map(|(id, _)| id.clone()).collect();
    if let Some(key) = key {
        let claimed = tx
            .prepare_cached(sql::KEY_CLAIM)
            .and_then(|mut s| s.execute(params![key.key(), key.fingerprint(), ids_to_json(&ids)]))
            .map_err(classify)?;
        if claimed == 0 {
            let (fingerprint, stored): (String, String) = tx
                .query_row(sql::KEY_LOOKUP, [key.key()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(classify)?;
            return replay_or_conflict(key, &fingerprint, &stored);
        }
    }
    for chunk in items.chunks(CHUNK_ROWS) {
        let mut insert = tx
            .prepare_cached(&multi_row_insert(chunk.len()))
            .map_err(classify)?;
        let values = chunk
            .iter()
            .flat_map(|(id, doc)| [id.as_str(), doc.as_str()]);
        match insert.execute(rusqlite::params_from_iter(values)) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Other(anyhow::anyhow!(
                    "a batch id collided: {e}"
                )));
            }
            Err(e) => return Err(classify(e)),
        }
    }
    // Dropping `tx` on any early return above rolls everything back.
    tx.commit().map_err(classify)?;
    Ok(BatchOutcome::Stored(ids))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError> {
        let (id, body) = (id.clone(), doc.as_str().to_owned());
        self.pool
            .run(move |conn| {
                let inserted = conn
                    .prepare_cached(sql::INSERT)
                    .and_then(|mut s| s.execute(params![id.as_str(), body]));
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate(id)),
                    Err(e) => Err(classify(e)),
                }
            })
            .await
    }

    async fn insert_batch(
        &self,
        items: &[(DocId, Document)],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError> {
        let (items, key) = (items.to_vec(), key.cloned());
        self.pool
            .run(move |conn| insert_batch(conn, &items, key.as_ref()))
            .await
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        if let Some(readers) = &self.readers {
            match readers.get(id.as_str()) {
                Ok(body) => return body.map(|b| stored_document(id, b)).transpose(),
                Err(NotRead::Failed(e)) => return Err(classify(e)),
                // Locked: the pool waits for it, within the deadline.
                Err(NotRead::Busy) => {}
            }
        }
        let id = id.clone();
        self.pool
            .run(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached(sql::GET)
                    .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
                    .map_err(classify)?;
                body.map(|b| stored_document(&id, b)).transpose()
            })
            .await
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        self.pool
            .run(move |conn| {
                let mut list = conn.prepare_cached(sql::LIST).map_err(classify)?;
                let rows = list
                    .query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect::<Result<Vec<(String, String)>, _>>())
                    .map_err(classify)?;
                stored_rows(rows)
            })
            .await
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(sql::DELETE)
                    .and_then(|mut s| s.execute([id.as_str()]))
                    .map(|n| n > 0)
                    .map_err(classify)
            })
            .await
    }

    async fn health_check(&self) -> Result<(), StoreError> {
        self.pool
            .run(|conn| {
                conn.query_row(sql::HEALTH, [], |_| Ok(()))
                    .map_err(classify)
            })
            .await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
