//! What both tiers' batch routes share: the concurrency gate, the limits,
//! the item count and the idempotency headers.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::domain::TraceToken;
use crate::internal_api::Failure;
use crate::settings::BatchSettings;
use crate::telemetry::Diagnostics;

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
        self.gate
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.busy())
    }

    /// The answer to a batch that finds every slot taken (here, or at the
    /// internal tier).
    pub fn busy(&self) -> ApiError {
        ApiError::failure(Failure::BatchesBusy).retry_after(self.retry_after_secs)
    }
}

/// Runs `parse` (reading up to `batch.max_items` items) on the blocking
/// pool: on the worker's event loop it would stall every other request of
/// the worker. A refusal goes to the trace log.
pub async fn parse_off_thread<T: Send + 'static>(
    parse: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    diagnostics: &Diagnostics,
    trace: Option<&TraceToken>,
) -> Result<T, ApiError> {
    let parsed = actix_web::web::block(parse)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    parsed.inspect_err(|e| {
        diagnostics.log(trace, format_args!("batch rejected: {}", e.message()));
    })
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
