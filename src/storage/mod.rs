//! One `Store` trait, one module per backend, one `open()` that picks.
//! Handlers only ever hold an `Arc<dyn Store>` and never know which backend
//! is behind it.

mod sqlite;
mod timed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{DocId, Document};
use crate::settings::{Settings, StorageType};

pub use timed::Timed;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time. The
    /// internal tier answers 504; the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A write collided with an existing id.
    #[error("duplicate id {0}")]
    Duplicate(DocId),
    /// Anything else: a bug, corrupt data, a constraint we did not expect.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite`, `postgres` or `mongodb`, for logs and `/api/version`.
    fn backend(&self) -> &'static str;

    /// Stores `doc` under `id`. Returns only once the write is durable as
    /// far as the backend promises (committed transaction / acknowledged
    /// write with majority concern where configured).
    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError>;

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError>;

    /// A cheap round trip proving the database answers.
    async fn health_check(&self) -> Result<(), StoreError>;

    /// Closes connections; called once at shutdown, after HTTP has drained.
    async fn close(&self);
}

/// Opens the configured backend, runs its migrations, and wraps it so every
/// operation has the configured deadline.
pub async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let storage = &settings.storage;
    let url = storage.url.as_deref().unwrap_or_default();
    let inner: Arc<dyn Store> = match storage.kind.unwrap_or(StorageType::Sqlite) {
        StorageType::Sqlite => Arc::new(sqlite::SqliteStore::open(url, storage).await?),
        other => anyhow::bail!(
            "storage.type = \"{}\" is not built into this version of cinemo",
            other.as_str()
        ),
    };
    Ok(Arc::new(Timed::new(
        inner,
        Duration::from_millis(storage.timeout_ms),
    )))
}
