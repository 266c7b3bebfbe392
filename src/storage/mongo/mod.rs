//! MongoDB through the official driver. Documents are stored as BSON
//! documents (not as text) so the old services' data reads back unchanged
//! and MongoDB tools see real fields; `_id` is the ObjectId of the DocId.
//! What JSON -> BSON -> JSON cannot keep is listed in docs/storage.md and
//! in `bson_json`.

mod bson_json;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bson::{Bson, doc};
use futures_util::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};

use super::{BatchOutcome, Store, StoreError};
use crate::domain::{DocId, Document, IdempotencyKey};
use crate::settings::{MongoStorage, redact_url};
use bson_json::{doc_id, oid};

pub struct MongoStore {
    client: Client,
    docs: Collection<bson::Document>,
    keys: Collection<bson::Document>,
    /// Cleared the first time the server says it cannot run transactions (a
    /// standalone server); batches then use the compensating path.
    transactions: AtomicBool,
}

impl MongoStore {
    pub async fn open(settings: &MongoStorage) -> anyhow::Result<Self> {
        let url = &settings.url;
        let shown = redact_url(url);
        let mut options = ClientOptions::parse(url).await.with_context(|| {
            format!("storage.url {shown} is not a valid MongoDB connection string")
        })?;
        // Bounded waits everywhere, so an outage is a quick 504 and never a
        // hang. The connection string may set its own; config wins only
        // where the string is silent.
        let connect = Duration::from_millis(settings.limits.connect_timeout_ms);
        options.server_selection_timeout.get_or_insert(connect);
        options.connect_timeout.get_or_insert(connect);
        options
            .max_pool_size
            .get_or_insert(settings.limits.max_connections);
        options.app_name.get_or_insert_with(|| "cinemo".into());
        let client = Client::with_options(options).context("building the MongoDB client")?;
        let db = client.database(&settings.database);
        let store = MongoStore {
            docs: db.collection(&settings.collection),
            keys: db.collection(&format!("{}_idempotency", settings.collection)),
            client,
            transactions: AtomicBool::new(true),
        };
        // Fail start-up on a wrong URL or credentials instead of serving 504s.
        store
            .client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await
            .with_context(|| format!("cannot reach MongoDB at {shown}"))?;
        Ok(store)
    }

    async fn replay_from_keys(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<BatchOutcome>, StoreError> {
        let Some(found) = self
            .keys
            .find_one(doc! {"_id": key.key()})
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        if found.get_str("fingerprint").ok() != Some(key.fingerprint()) {
            return Err(StoreError::IdempotencyConflict);
        }
        let ids = found
            .get_array("ids")
            .map_err(|e| {
                StoreError::Other(anyhow::anyhow!("stored idempotency ids unreadable: {e}"))
            })?
            .iter()
            .map(|b| match b {
                Bson::ObjectId(oid) => Ok(doc_id(oid)),
                other => Err(StoreError::Other(anyhow::anyhow!(
                    "stored idempotency id {other} is not an ObjectId"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(BatchOutcome::Replayed(ids)))
    }

    fn key_doc(key: &IdempotencyKey, ids: &[DocId]) -> bson::Document {
        let ids: Vec<Bson> = ids.iter().map(|id| Bson::ObjectId(oid(id))).collect();
        doc! {"_id": key.key(), "fingerprint": key.fingerprint(), "ids": ids, "createdAt": bson::DateTime::now()}
    }

    /// Replica sets and sharded clusters: the key and every document in one
    /// multi-document transaction, committed or aborted as a whole.
    async fn batch_in_transaction(
        &self,
        docs: &[bson::Document],
        ids: &[DocId],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, mongodb::error::Error> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        if let Some(key) = key {
            self.keys
                .insert_one(Self::key_doc(key, ids))
                .session(&mut session)
                .await?;
        }
        if !docs.is_empty() {
            self.docs
                .insert_many(docs)
                .ordered(true)
                .session(&mut session)
                .await?;
        }
        session.commit_transaction().await?;
        // Dropping the session on an early `?` above aborts the transaction.
        Ok(BatchOutcome::Stored(ids.to_vec()))
    }

    /// Standalone servers cannot run transactions: an ordered insert_many,
    /// and on failure a delete of whatever part went in. Readers may see a
    /// partial batch while it runs, and a crash of cinemo in between leaves
    /// it partial; see docs/storage.md.
    async fn batch_compensating(
        &self,
        docs: &[bson::Document],
        ids: &[DocId],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError> {
        if let Some(key) = key
            && let Some(replay) = self.replay_from_keys(key).await?
        {
            return Ok(replay);
        }
        if let Err(e) = self.docs.insert_many(docs).ordered(true).await {
            let all: Vec<Bson> = ids.iter().map(|id| Bson::ObjectId(oid(id))).collect();
            if let Err(undo) = self.docs.delete_many(doc! {"_id": {"$in": all}}).await {
                tracing::error!(error = %undo, "could not remove a failed batch's documents; it may be partly stored");
            }
            return Err(classify(e));
        }
        if let Some(key) = key {
            self.keys
                .insert_one(Self::key_doc(key, ids))
                .await
                .map_err(classify)?;
        }
        Ok(BatchOutcome::Stored(ids.to_vec()))
    }
}

fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|errs| errs.first().map(|w| w.code))
            .or_else(|| m.write_concern_error.as_ref().map(|w| w.code)),
        _ => None,
    }
}

/// 20 IllegalOperation ("Transaction numbers are only allowed on a replica
/// set member or mongos"), or the same text from a stand-in.
fn transactions_unsupported(e: &mongodb::error::Error) -> bool {
    code_of(e) == Some(20) || e.to_string().contains("Transaction numbers")
}

fn classify(e: mongodb::error::Error) -> StoreError {
    let unavailable = matches!(
        e.kind.as_ref(),
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("TransientTransactionError")
        || e.contains_label("RetryableWriteError")
        // NotWritablePrimary, NotPrimary*, PrimarySteppedDown, ShutdownInProgress,
        // InterruptedAtShutdown, HostUnreachable, NetworkTimeout: an election
        // or a restart, over in seconds.
        || matches!(code_of(&e), Some(10107 | 13435 | 13436 | 189 | 91 | 11600 | 6 | 89 | 7));
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(anyhow::Error::new(e))
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn insert(&self, id: &DocId, document: &Document) -> Result<(), StoreError> {
        let stored = bson_json::to_bson(id, document)?;
        match self.docs.insert_one(stored).await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == Some(11000) => Err(StoreError::Duplicate(id.clone())),
            Err(e) => Err(classify(e)),
        }
    }

    async fn insert_batch(
        &self,
        items: &[(DocId, Document)],
        key: Option<&IdempotencyKey>,
    ) -> Result<BatchOutcome, StoreError> {
        let ids: Vec<DocId> = items.iter().map(|(id, _)| id.clone()).collect();
        // Name the item a client must fix: "item 3: a string holds ...".
        let docs = items
            .iter()
            .enumerate()
            .map(|(i, (id, d))| {
                bson_json::to_bson(id, d).map_err(|e| match e {
                    StoreError::Rejected(why) => StoreError::Rejected(format!("item {i}: {why}")),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !self.transactions.load(Ordering::Relaxed) {
            return self.batch_compensating(&docs, &ids, key).await;
        }
        match (self.batch_in_transaction(&docs, &ids, key).await, key) {
            (Ok(outcome), _) => Ok(outcome),
            (Err(e), _) if transactions_unsupported(&e) => {
                tracing::warn!(
                    "MongoDB cannot run transactions here (standalone server): batches use insert_many with compensation"
                );
                self.transactions.store(false, Ordering::Relaxed);
                self.batch_compensating(&docs, &ids, key).await
            }
            // The key existed (11000) or a concurrent batch holds it (112
            // WriteConflict): the transaction is aborted; read the winner.
            (Err(e), Some(key)) if matches!(code_of(&e), Some(11000 | 112)) => {
                match self.replay_from_keys(key).await? {
                    Some(replay) => Ok(replay),
                    None => Err(StoreError::Unavailable(format!(
                        "a batch with the same idempotency key is in progress: {e}"
                    ))),
                }
            }
            (Err(e), _) => Err(classify(e)),
        }
    }

    async fn get(&self, id: &DocId) -> Result<Option<Document>, StoreError> {
        let found = self
            .docs
            .find_one(doc! {"_id": oid(id)})
            .await
            .map_err(classify)?;
        found.map(|d| bson_json::to_document(&d)).transpose()
    }

    async fn list(
        &self,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<(DocId, Document)>, StoreError> {
        let filter = match after {
            Some(after) => doc! {"_id": {"$gt": oid(after)}},
            None => doc! {},
        };
        let cursor = self
            .docs
            .find(filter)
            .sort(doc! {"_id": 1})
            .limit(i64::from(limit))
            .await
            .map_err(classify)?;
        let found: Vec<bson::Document> = cursor.try_collect().await.map_err(classify)?;
        found
            .iter()
            .map(|d| {
                let id = match d.get("_id") {
                    Some(Bson::ObjectId(o)) => doc_id(o),
                    other => {
                        return Err(StoreError::Other(anyhow::anyhow!(
                            "a stored _id is not an ObjectId: {other:?}"
                        )));
                    }
                };
                Ok((id, bson_json::to_document(d)?))
            })
            .collect()
    }

    async fn delete(&self, id: &DocId) -> Result<bool, StoreError> {
        let done = self
            .docs
            .delete_one(doc! {"_id": oid(id)})
            .await
            .map_err(classify)?;
        Ok(done.deleted_count > 0)
    }

    async fn health_check(&self) -> Result<(), StoreError> {
        self.client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn close(&self) {
        self.client.clone().shutdown().await;
    }
}
