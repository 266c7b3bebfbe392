//! What both tiers' batch routes share: the concurrency gate, the limits,
//! the idempotency headers and the list query.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;
use crate::domain::DocId;
use crate::settings::BatchSettings;
use crate::storage::LIST_MAX;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Sent by the public tier to the internal one: the fingerprint of the
/// client's payload, since the documents it builds carry a fresh
/// `dateCreated` on every retry.
pub const IDEMPOTENCY_FINGERPRINT: &str = "idempotency-fingerprint";
/// Set on an answer that replays an earlier batch with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

pub const LIST_DEFAULT: u32 = 100;

/// One per tier and process, shared by every worker.
#[derive(Clone)]
pub struct BatchLimits {
    gate: Arc<Semaphore>,
    pub max_items: usize,
    pub max_body_bytes: usize,
    pub retry_after_secs: u64,
}

impl BatchLimits {
    pub fn new(settings: &BatchSettings) -> Self {
        BatchLimits {
            gate: Arc::new(Semaphore::new(settings.max_concurrent)),
            max_items: settings.max_items,
            max_body_bytes: settings.max_body_bytes,
            retry_after_secs: settings.retry_after_secs,
        }
    }

    /// A slot for one batch, or 429: a batch holds its whole body and
    /// document list in memory and a database connection for seconds, so
    /// bursts wait at the client instead of piling up here.
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.gate.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many batches in progress, retry later",
            )
            .retry_after(self.retry_after_secs)
        })
    }
}

pub fn check_count(n: usize, max_items: usize) -> Result<(), ApiError> {
    if n == 0 {
        Err(ApiError::bad_request("batch is empty"))
    } else if n > max_items {
        Err(ApiError::with_text(
            StatusCode::BAD_REQUEST,
            format!("batch has {n} items, more than the maximum of {max_items}"),
        ))
    } else {
        Ok(())
    }
}

/// The raw `Idempotency-Key` header, if any; 400 when it is not text.
pub fn idempotency_header<'r>(
    req: &'r HttpRequest,
    name: &str,
) -> Result<Option<&'r str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::bad_request("malformed Idempotency-Key")),
    }
}

pub const KEY_REUSED: &str = "Idempotency-Key was already used with a different payload";

#[derive(Deserialize)]
struct RawListQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// `?limit=N&after=ID`, checked.
pub struct ListQuery {
    pub limit: u32,
    pub after: Option<DocId>,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let raw: RawListQuery =
            serde_urlencoded_query(query).ok_or(ApiError::bad_request("malformed query string"))?;
        let limit = match raw.limit.as_deref() {
            None => LIST_DEFAULT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=LIST_MAX).contains(l))
                .ok_or(ApiError::bad_request(
                    "limit must be an integer from 1 to 1000",
                ))?,
        };
        let after = match raw.after.as_deref() {
            None | Some("") => None,
            Some(a) => Some(DocId::parse(a).ok_or(ApiError::bad_request(
                "malformed after: expected a 24-hex id",
            ))?),
        };
        Ok(ListQuery { limit, after })
    }
}

fn serde_urlencoded_query(query: &str) -> Option<RawListQuery> {
    actix_web::web::Query::<RawListQuery>::from_query(query)
        .ok()
        .map(|q| q.into_inner())
}
