//! What every public handler shares: the worker's client for the internal
//! tier, the diagnostics handle, the request's trace token, and what the
//! public tier answers when the internal tier fails.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use crate::domain::TraceToken;
use crate::http::error::ApiError;
use crate::internal_api::Failure;
use crate::internal_client::{InternalClient, InternalError};
use crate::telemetry::Diagnostics;
use crate::telemetry::names::{TRACE_HEADER, TRACEPARENT_HEADER};
use crate::telemetry::trace_context;

pub struct PublicState {
    pub internal: InternalClient,
    pub diagnostics: Diagnostics,
}

/// The request's trace token: `X-Trace` when present; otherwise the trace
/// id of a valid W3C `traceparent`, so a caller that only speaks W3C trace
/// context still gets log frames (docs/telemetry.md). The internal tier
/// only reads `X-Trace`, which this tier forwards.
pub fn trace_of(req: &HttpRequest) -> Option<TraceToken> {
    let Some(raw) = req.headers().get(TRACE_HEADER) else {
        if !req.headers().contains_key(TRACEPARENT_HEADER) {
            return None;
        }
        return trace_context::trace_id_hex(req.headers()).and_then(|id| TraceToken::parse(&id));
    };
    let token = raw.to_str().ok().and_then(TraceToken::parse);
    if token.is_none() {
        // A bad token must not fail the customer's request; it just is not traced.
        tracing::debug!(
            "ignoring an X-Trace header that is empty, too long or not printable ASCII"
        );
    }
    token
}

/// What the public tier answers when a call to the internal tier failed;
/// the cause is logged (and written to the trace log when the request is
/// traced). A failure this call does not expect from the internal API (a
/// 422 on a read, say) is the internal tier's error.
pub fn upstream_error(
    state: &PublicState,
    trace: Option<&TraceToken>,
    what: &str,
    e: InternalError,
) -> ApiError {
    tracing::warn!(error = %e, "{what} failed at the internal tier");
    state
        .diagnostics
        .log(trace, format_args!("{what} failed: {e}"));
    match e {
        InternalError::Timeout => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "internal service timed out")
        }
        InternalError::Unreachable(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "internal service unreachable")
        }
        InternalError::Refused(Failure::StorageUnavailable) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "storage unavailable")
        }
        InternalError::Refused(Failure::Unavailable) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal service unavailable",
        ),
        e @ InternalError::Request(_) => ApiError::internal(&e),
        InternalError::Refused(Failure::NotFound | Failure::KeyReused | Failure::BatchesBusy)
        | InternalError::Unexpected { .. }
        | InternalError::BadResponse(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "internal service error")
        }
    }
}
