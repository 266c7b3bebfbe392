use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Store, StoreError};
use crate::domain::{DocId, Document};
use crate::settings::StorageSettings;

/// The embedded default: one SQLite file in WAL mode.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str, settings: &StorageSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("storage.url {url:?} is not a valid SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed write survives a process crash;
            // only an OS crash or power cut can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_millis(settings.timeout_ms))
            .foreign_keys(true);
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
        Ok(SqliteStore { pool })
    }
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
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

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
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
