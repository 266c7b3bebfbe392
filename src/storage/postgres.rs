use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::Connection;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};

use super::sql::{self, ids_to_json, replay_or_conflict, stored_document, stored_rows};
use super::{BatchOutcome, Store, StoreError};
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::{StoreLimits, redact_url};

/// PostgreSQL (RDS/Aurora or any server >= 12) through a sqlx pool.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, settings: &StoreLimits) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("storage.url {shown} is not a valid PostgreSQL URL"))?
            .application_name("cinemo");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            // Waiting for a pooled connection counts against the connect
            // timeout, so an outage fails fast instead of queueing requests.
            .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
            // Connections that died with the server are noticed before use.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
        sqlx::migrate!("src/storage/migrations/postgres")
            .run(&pool)
            .await
            .context("running PostgreSQL migrations")?;
        Ok(PostgresStore { pool })
    }
}

/// A pooled connection that is closed, not returned to the pool, unless
/// `return_to_pool` is called. A future dropped in the middle of a COPY
/// leaves the connection's protocol state behind it (the server still
/// expects data, or answers a CopyFail the next user would read as its
/// own); closing the socket makes the server roll the transaction back and
/// keeps the pool clean. Early returns with an error close it too, which
/// costs one reconnect on a path that is already failing.
struct DiscardUnlessReturned(Option<PoolConnection<Postgres>>);

impl DiscardUnlessReturned {
    fn get(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("connection present until dropped")
    }

    fn return_to_pool(mut self) {
        // Dropping a PoolConnection hands it back.
        drop(self.0.take());
    }
}

impl Drop for DiscardUnlessReturned {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Detached from the pool and dropped: the socket closes.
            drop(conn.detach());
        }
    }
}

/// How much COPY data is buffered before it is sent: large enough that the
/// per-message overhead vanishes, small enough to stay out of the way of the
/// memory the batch itself holds.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// One row of COPY's text format: columns separated by a tab, the row ended
/// by a newline, and backslash, tab, newline and carriage return escaped in
/// each value. (Minified JSON never holds a raw tab, newline or carriage
/// return, but a backslash is common, and the escaper does not rely on it.)
fn copy_text_row(buf: &mut Vec<u8>, id: &str, body: &str) {
    fn field(buf: &mut Vec<u8>, value: &str) {
        let bytes = value.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escaped: &[u8] = match b {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => continue,
            };
            buf.extend_from_slice(&bytes[start..i]);
            buf.extend_from_slice(escaped);
            start = i + 1;
        }
        buf.extend_from_slice(&bytes[start..]);
    }
    field(buf, id);
    buf.push(b'\t');
    field(buf, body);
    buf.push(b'\n');
}

fn classify(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        // Class 08: connection exceptions; 57P01-57P03: the server is
        // shutting down or starting; 53300: too many connections.
        sqlx::Error::Database(ref db)
            if db.code().is_some_and(|c| {
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
            }) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Other(other.into()),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT)
            .bind(id.as_str())
            .bind(doc.as_str())
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
        let ids: Vec<DocId> = items.iter().map(|(id, _)| id.clone()).collect();
        // Declared before `tx`, so it drops after it: a batch whose future is
        // dropped (its deadline) closes this connection instead of handing
        // a connection that was cut mid-COPY back to the pool.
        let mut conn = DiscardUnlessReturned(Some(self.pool.acquire().await.map_err(classify)?));
        let mut tx = conn.get().begin().await.map_err(classify)?;
        if let Some(key) = key {
            // ON CONFLICT DO NOTHING: a concurrent batch with the same key
            // waits here on the first one's row lock until it commits or
            // rolls back, then sees no row inserted and reads the winner.
            let claimed = sqlx::query(sql::KEY_CLAIM)
                .bind(key.key())
                .bind(key.fingerprint())
                .bind(ids_to_json(&ids))
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            if claimed.rows_affected() == 0 {
                let (fingerprint, stored): (String, String) = sqlx::query_as(sql::KEY_LOOKUP)
                    .bind(key.key())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
                tx.rollback().await.map_err(classify)?;
                conn.return_to_pool();
                return replay_or_conflict(key, &fingerprint, &stored);
            }
        }
        // COPY FROM STDIN inside the transaction: PostgreSQL's own bulk path
        // (no per-row statement, no parameter arrays to decode), and still
        // all or nothing. A dropped future (the batch deadline) sends
        // CopyFail, and the transaction then rolls back.
        let mut copy = tx
            .copy_in_raw("COPY documents (id, body) FROM STDIN")
            .await
            .map_err(classify)?;
        let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES + 4096);
        for (id, doc) in items {
            copy_text_row(&mut buf, id.as_str(), doc.as_str());
            if buf.len() >= COPY_CHUNK_BYTES {
                copy.send(buf.as_slice()).await.map_err(classify)?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_slice()).await.map_err(classify)?;
        }
        match copy.finish().await {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::Other(anyhow::anyhow!(
                    "a batch id collided: {}",
                    db.message()
                )));
            }
            Err(e) => return Err(classify(e)),
        }
        tx.commit().await.map_err(classify)?;
        conn.return_to_pool();
        Ok(BatchOutcome::Stored(ids))
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(sql::GET)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.map(|(body,)| stored_document(id, body)).transpose()
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        let after = after.map(|a| a.as_str()).unwrap_or_default();
        let rows: Vec<(String, String)> = sqlx::query_as(sql::LIST)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        stored_rows(rows)
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn health_check(&self) -> Result<(), StoreError> {
        sqlx::query(sql::HEALTH)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::copy_text_row;

    #[test]
    fn copy_rows_escape_what_the_text_format_treats_specially() {
        let mut buf = Vec::new();
        copy_text_row(&mut buf, "0123", r#"{"a":"x\"y","t":"\t","u":"é"}"#);
        copy_text_row(&mut buf, "raw", "tab\there\nnl\rcr\\bs");
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "0123\t{\"a\":\"x\\\\\"y\",\"t\":\"\\\\t\",\"u\":\"é\"}\n\
             raw\ttab\\there\\nnl\\rcr\\\\bs\n"
        );
    }
}
