use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{BatchOutcome, Store, StoreError, ids_to_json, replay_or_conflict, stored_rows};
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::{StorageSettings, redact_url};

/// PostgreSQL (RDS/Aurora or any server >= 12) through a sqlx pool.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, settings: &StorageSettings) -> anyhow::Result<Self> {
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
        let result = sqlx::query("INSERT INTO documents (id, body) VALUES ($1, $2)")
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        if let Some(key) = key {
            // ON CONFLICT DO NOTHING: a concurrent batch with the same key
            // waits here on the first one's row lock until it commits or
            // rolls back, then sees no row inserted and reads the winner.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (key, fingerprint, ids) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key.key())
            .bind(key.fingerprint())
            .bind(ids_to_json(&ids))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if claimed.rows_affected() == 0 {
                let (fingerprint, stored): (String, String) =
                    sqlx::query_as("SELECT fingerprint, ids FROM idempotency_keys WHERE key = $1")
                        .bind(key.key())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(classify)?;
                return replay_or_conflict(key, &fingerprint, &stored);
            }
        }
        // One statement for the whole batch: two arrays, unnested row by
        // row. A single round trip, and all or nothing with the transaction.
        let id_col: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
        let body_col: Vec<&str> = items.iter().map(|(_, doc)| doc.as_str()).collect();
        let result = sqlx::query(
            "INSERT INTO documents (id, body) SELECT * FROM UNNEST($1::text[], $2::text[])",
        )
        .bind(&id_col)
        .bind(&body_col)
        .execute(&mut *tx)
        .await;
        match result {
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
        Ok(BatchOutcome::Stored(ids))
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM documents WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        Ok(row.map(|(body,)| Document::from_stored(body)))
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        let after = after.map(|a| a.as_str()).unwrap_or_default();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, body FROM documents WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        stored_rows(rows)
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM documents WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
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
