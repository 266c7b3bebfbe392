use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Store, StoreError};
use crate::domain::{DocId, Document};

/// Puts a deadline on every storage operation, so a database that hangs
/// (a blackholed network, a stuck failover) turns into a quick 504 instead
/// of a request that never ends.
pub struct Timed {
    inner: Arc<dyn Store>,
    deadline: Duration,
}

impl Timed {
    pub fn new(inner: Arc<dyn Store>, deadline: Duration) -> Self {
        Timed { inner, deadline }
    }

    async fn run<T>(
        &self,
        op: &str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{} {op} did not finish within {} ms",
                self.inner.backend(),
                self.deadline.as_millis()
            ))),
        }
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
