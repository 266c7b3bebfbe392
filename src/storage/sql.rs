//! What the SQL backends (SQLite and PostgreSQL) share: the statements
//! both run, written once in the dialect both accept, and the reading back
//! of what they store.
//!
//! Parameters are `$1`, `$2`, ...: PostgreSQL's own, and on SQLite named
//! parameters bound by position, the same thing. `now()` is PostgreSQL's;
//! on SQLite cinemo registers a `now()` on every connection that answers
//! in the column's unit, milliseconds since the epoch
//! (`sqlite/connect.rs`).

use super::{BatchOutcome, StoreError};
use crate::domain::{DocId, Document, IdempotencyKey};

pub const INSERT: &str = "INSERT INTO documents (id, body, created_at) VALUES ($1, $2, now())";
pub const GET: &str = "SELECT body FROM documents WHERE id = $1";
/// Documents after `$1` (`''` for the first page), at most `$2`, in id order.
pub const LIST: &str = "SELECT id, body FROM documents WHERE id > $1 ORDER BY id LIMIT $2";
pub const DELETE: &str = "DELETE FROM documents WHERE id = $1";
pub const HEALTH: &str = "SELECT 1";
/// Records a batch's key with its fingerprint and ids, unless the key is
/// already there (then nothing changes: zero rows).
pub const KEY_CLAIM: &str = "INSERT INTO idempotency_keys (key, fingerprint, ids, created_at) \
     VALUES ($1, $2, $3, now()) ON CONFLICT (key) DO NOTHING";
pub const KEY_LOOKUP: &str = "SELECT fingerprint, ids FROM idempotency_keys WHERE key = $1";

/// The ids of a stored batch as the JSON array text kept with its
/// idempotency key (SQL backends).
pub fn ids_to_json(ids: &[DocId]) -> String {
    let mut out = String::with_capacity(ids.len() * 27 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.as_str());
        out.push('"');
    }
    out.push(']');
    out
}

fn ids_from_json(text: &str) -> Result<Vec<DocId>, StoreError> {
    let raw: Vec<String> = serde_json::from_str(text).map_err(|e| {
        StoreError::Other(anyhow::anyhow!(
            "stored idempotency ids are not a JSON array: {e}"
        ))
    })?;
    raw.iter()
        .map(|s| {
            DocId::parse(s).ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!("stored idempotency id {s:?} is malformed"))
            })
        })
        .collect()
}

/// A key found in the store: the same payload replays, another conflicts.
pub fn replay_or_conflict(
    key: &IdempotencyKey,
    stored_fingerprint: &str,
    stored_ids: &str,
) -> Result<BatchOutcome, StoreError> {
    if stored_fingerprint == key.fingerprint() {
        Ok(BatchOutcome::Replayed(ids_from_json(stored_ids)?))
    } else {
        Err(StoreError::IdempotencyConflict)
    }
}

/// `(id, body)` rows read back from an SQL table.
pub fn stored_rows(rows: Vec<(String, String)>) -> Result<Vec<(DocId, Document)>, StoreError> {
    rows.into_iter()
        .map(|(id, body)| {
            let id = DocId::parse(&id).ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!("stored id {id:?} is malformed"))
            })?;
            let doc = stored_document(&id, body)?;
            Ok((id, doc))
        })
        .collect()
}

/// A stored body as a `Document`, or an error naming the row.
pub fn stored_document(id: &DocId, body: String) -> Result<Document, StoreError> {
    Document::from_stored(body).map_err(|_| {
        StoreError::Other(anyhow::anyhow!(
            "the stored document {id} is not a JSON object"
        ))
    })
}
