//! One `Store` trait, one module per backend, one `open()` that picks.
//! Handlers only ever hold an `Arc<dyn Store>` and never know which backend
//! is behind it.

mod mongo;
mod postgres;
mod sql;
mod sqlite;
mod timed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::Storage;

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
    /// The idempotency key was used before with a different payload.
    #[error("idempotency key reused with a different payload")]
    IdempotencyConflict,
    /// A valid JSON object this backend cannot hold (MongoDB: a key with a
    /// NUL character, a number beyond a double, a lone UTF-16 surrogate,
    /// nesting beyond 100 levels). The internal tier answers 400 with the
    /// reason; nothing was stored.
    #[error("document cannot be stored: {0}")]
    Rejected(String),
    /// Anything else: a bug, corrupt data, a constraint we did not expect.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What a batch insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The documents were stored, all of them, under these ids.
    Stored(Vec<DocId>),
    /// The idempotency key was seen before with the same payload: nothing
    /// was stored now; these are the ids of the first, committed, batch.
    Replayed(Vec<DocId>),
}

impl BatchOutcome {
    pub fn ids(&self) -> &[DocId] {
        match self {
            BatchOutcome::Stored(ids) | BatchOutcome::Replayed(ids) => ids,
        }
    }
}

/// Most documents one `list` call returns, whatever the caller asks.
pub const LIST_MAX: u32 = 1000;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite`, `postgres` or `mongodb`, for logs and `/api/version`.
    fn backend(&self) -> &'static str;

    /// Stores `doc` under `id`. Returns only once the write is durable as
    /// far as the backend promises (committed transaction / acknowledged
    /// write with majority concern where configured).
    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError>;

    /// Stores every item or none (see docs/storage.md for each backend's
    /// guarantee). With a key, the key and the ids are recorded in the same
    /// transaction; a key seen before answers `Replayed` with the first ids
    /// (same payload) or `IdempotencyConflict` (another payload).
    async fn insert_batch(
        &self,
        items: &[(DocId, Document)],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError>;

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError>;

    /// Up to `limit` documents with ids greater than `after`, in id order
    /// (ids are ObjectIds, so roughly creation order).
    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError>;

    /// Removes a document; false when there was none.
    async fn delete(&self, id: &DocId) -> Result<bool, StoreError>;

    /// A cheap round trip proving the database answers.
    async fn health_check(&self) -> Result<(), StoreError>;

    /// Closes connections; called once at shutdown, after HTTP has drained.
    async fn close(&self);
}

/// Where the data lives, for the start-up banner: the SQLite file as an
/// absolute path, or the server's URL with its password hidden.
pub fn location(storage: &Storage) -> String {
    use crate::settings::redact_url;
    match storage {
        Storage::Sqlite(s) => sqlite::location(&s.url),
        Storage::Postgres(s) => redact_url(&s.url),
        Storage::Mongodb(m) => format!(
            "{} (database {}, collection {})",
            redact_url(&m.url),
            m.database,
            m.collection
        ),
    }
}

/// Opens the configured backend, runs its migrations, and wraps it so every
/// operation has the configured deadline.
pub async fn open(storage: &Storage) -> anyhow::Result<Arc<dyn Store>> {
    let inner: Arc<dyn Store> = match storage {
        Storage::Sqlite(s) => Arc::new(sqlite::SqliteStore::open(&s.url, &s.limits).await?),
        Storage::Postgres(s) => Arc::new(postgres::PostgresStore::open(&s.url, &s.limits).await?),
        Storage::Mongodb(m) => Arc::new(mongo::MongoStore::open(m).await?),
    };
    let limits = storage.limits();
    Ok(Arc::new(Timed::new(
        inner,
        Duration::from_millis(limits.timeout_ms),
        Duration::from_millis(limits.batch_timeout_ms),
    )))
}
