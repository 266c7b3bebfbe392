use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::BatchOutcome;
use super::{Store, StoreError};
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::telemetry::names;
use crate::telemetry::otel::DependencyCall;

/// Puts a deadline on every storage operation, so a database that hangs
/// (a blackholed network, a stuck failover) turns into a quick 504 instead
/// of a request that never ends.
pub struct Timed {
    inner: Arc<dyn Store>,
    deadline: Duration,
    /// A batch writes up to `batch.max_items` rows in one transaction.
    batch_deadline: Duration,
}

impl Timed {
    pub fn new(inner: Arc<dyn Store>, deadline: Duration, batch_deadline: Duration) -> Self {
        Timed {
            inner,
            deadline,
            batch_deadline,
        }
    }

    async fn run<T>(
        &self,
        op: &str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.run_within(self.deadline, op, fut).await
    }

    /// A timed-out operation's future is dropped: a transaction in flight is
    /// then rolled back by the driver, so a deadline never leaves half a
    /// batch behind. (A deadline that falls during COMMIT itself may answer
    /// 504 for a batch that did commit; a retry with the same
    /// Idempotency-Key then returns its ids instead of storing it twice.)
    async fn run_within<T>(
        &self,
        deadline: Duration,
        op: &str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let call = DependencyCall::start(names::PEER_STORAGE, || {
            format!("{} {op}", self.inner.backend())
        });
        let (result, outcome) = match tokio::time::timeout(deadline, fut).await {
            Ok(Ok(v)) => (Ok(v), names::OUTCOME_SUCCESS),
            // The store's own answers to a bad request (a taken id, a
            // reused key, a document it cannot hold) are calls that worked,
            // as a 4xx from the internal tier is: `fail` means storage
            // misbehaved, which is what an operator looks for.
            Ok(Err(
                e @ (StoreError::Duplicate(_)
                | StoreError::IdempotencyConflict
                | StoreError::Rejected(_)),
            )) => (Err(e), names::OUTCOME_SUCCESS),
            Ok(Err(e)) => (Err(e), names::OUTCOME_FAIL),
            Err(_) => (
                Err(StoreError::Unavailable(format!(
                    "{} {op} did not finish within {} ms",
                    self.inner.backend(),
                    deadline.as_millis()
                ))),
                names::OUTCOME_TIMEOUT,
            ),
        };
        call.finish(outcome);
        result
    }
}

#[async_trait]
impl Store for Timed {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn insert(&self, id: &DocId, doc: &Document) -> Result<(), StoreError> {
        self.run("insert", self.inner.insert(id, doc)).await
    }

    async fn insert_batch(
        &self,
        items: &[(DocId, Document)],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError> {
        self.run_within(
            self.batch_deadline,
            "batch insert",
            self.inner.insert_batch(items, key),
        )
        .await
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        self.run("list", self.inner.list(after, limit)).await
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        self.run("delete", self.inner.delete(id)).await
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        self.run("get", self.inner.get(id)).await
    }

    async fn health_check(&self) -> Result<(), StoreError> {
        self.run("health check", self.inner.health_check()).await
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
