//! The public tier: the customers API, in front of the internal tier.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{ApiError, json, text};
use crate::domain::{CustomerName, DocId, TraceToken};
use crate::internal_client::{InternalClient, InternalError};
use crate::telemetry::Diagnostics;
use crate::telemetry::diagnostics::now_ms;
use crate::telemetry::names::{self, TRACE_HEADER};

pub struct PublicState {
    pub internal: InternalClient,
    pub diagnostics: Diagnostics,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/health", web::get().to(health))
        .route("/api/customers", web::post().to(create))
        .route("/api/customers/{id}", web::get().to(read));
}

fn trace_of(req: &HttpRequest) -> Option<TraceToken> {
    let raw = req.headers().get(TRACE_HEADER)?;
    let token = raw.to_str().ok().and_then(TraceToken::parse);
    if token.is_none() {
        // A bad token must not fail the customer's request; it just is not traced.
        tracing::debug!(
            "ignoring an X-Trace header that is empty, too long or not printable ASCII"
        );
    }
    token
}

/// What the public tier answers when the internal tier fails; the cause is
/// logged (and written to the trace log when the request is traced).
fn upstream_error(
    state: &PublicState,
    trace: Option<&TraceToken>,
    what: &str,
    e: InternalError,
) -> ApiError {
    tracing::warn!(error = %e, "{what} failed at the internal tier");
    state.diagnostics.log(trace, format!("{what} failed: {e}"));
    match e {
        InternalError::Timeout => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "internal service timed out")
        }
        InternalError::Unreachable(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "internal service unreachable")
        }
        InternalError::Status { status, .. } if status.as_u16() == 504 => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "storage unavailable")
        }
        InternalError::Status { status, .. } if status.as_u16() == 503 => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal service unavailable",
        ),
        InternalError::Status { .. } | InternalError::BadResponse(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "internal service error")
        }
    }
}

#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "Ready: the internal tier answers", body = String, content_type = "text/plain", example = "Frontend healthy"),
        (status = 503, description = "The internal tier does not answer", body = String, content_type = "text/plain"),
        (status = 429, description = "Over this client's rate limit", body = String, content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds"))),
    ))]
pub(crate) async fn health(state: web::Data<PublicState>) -> HttpResponse {
    match state.internal.live().await {
        Ok(()) => text(StatusCode::OK, "Frontend healthy"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Frontend unhealthy: internal service unreachable",
            )
        }
    }
}

#[utoipa::path(get, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The customer id: 24 hexadecimal digits"), super::openapi::Trace),
    responses(
        (status = 200, description = "The stored customer document", body = super::openapi::StoredCustomer, content_type = "application/json"),
        (status = 400, description = "`malformed customerId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        (status = 414, description = "`URI too long`", body = String, content_type = "text/plain"),
        (status = 429, description = "Over this client's rate limit", body = String, content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds"))),
        (status = 502, description = "The internal tier failed or is unreachable", body = String, content_type = "text/plain"),
        (status = 503, description = "The internal tier is unavailable", body = String, content_type = "text/plain"),
        (status = 504, description = "The internal tier or its storage timed out", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn read(
    req: HttpRequest,
    state: web::Data<PublicState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let d = &state.diagnostics;
    d.metric(names::READ_CUSTOMER_ATTEMPT);
    let result = read_inner(&req, &state, trace.as_ref()).await;
    d.metric(if result.is_ok() {
        names::READ_CUSTOMER_SUCCESS
    } else {
        names::READ_CUSTOMER_FAIL
    });
    result
}

async fn read_inner(
    req: &HttpRequest,
    state: &PublicState,
    trace: Option<&TraceToken>,
) -> Result<HttpResponse, ApiError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    let Some(id) = DocId::parse(raw) else {
        state
            .diagnostics
            .log(trace, "read customer rejected: malformed customerId");
        return Err(ApiError::bad_request("malformed customerId"));
    };
    state
        .diagnostics
        .log(trace, format!("reading customer {id}"));
    match state.internal.get_cache(&id, trace).await {
        Ok(Some(body)) => {
            state.diagnostics.log(trace, format!("read customer {id}"));
            Ok(json(StatusCode::OK, body))
        }
        Ok(None) => {
            state
                .diagnostics
                .log(trace, format!("customer {id} not found"));
            Err(ApiError::not_found("cacheId not found"))
        }
        Err(e) => Err(upstream_error(state, trace, "read customer", e)),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CreateRequest {
    /// Any non-empty string of at most 1024 characters.
    #[schema(min_length = 1, max_length = 1024)]
    name: String,
}

/// The stored document; field order is the old service's.
#[derive(Serialize)]
struct CustomerDocument<'a> {
    name: &'a str,
    #[serde(rename = "dateCreated")]
    date_created: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Created<'a> {
    #[serde(rename = "customerId")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    customer_id: &'a str,
}

#[utoipa::path(post, path = "/api/customers", tag = "customers",
    params(super::openapi::Trace),
    request_body(content = CreateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Created", body = Created<'static>, content_type = "application/json",
            links(("read" = (operation_id = "read", parameters(("id" = "$response.body#/customerId")), description = "The customer just created")))
        ),
        (status = 400, description = "`customer name missing` or `customer name too long`", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `public.max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 429, description = "Over this client's rate limit", body = String, content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds"))),
        (status = 502, description = "The internal tier failed or is unreachable", body = String, content_type = "text/plain"),
        (status = 503, description = "The internal tier is unavailable", body = String, content_type = "text/plain"),
        (status = 504, description = "The internal tier or its storage timed out", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PublicState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let d = &state.diagnostics;
    d.metric(names::CREATE_CUSTOMER_ATTEMPT);
    let result = create_inner(&body, &state, trace.as_ref()).await;
    d.metric(if result.is_ok() {
        names::CREATE_CUSTOMER_SUCCESS
    } else {
        names::CREATE_CUSTOMER_FAIL
    });
    result
}

async fn create_inner(
    body: &[u8],
    state: &PublicState,
    trace: Option<&TraceToken>,
) -> Result<HttpResponse, ApiError> {
    let name = serde_json::from_slice::<CreateRequest>(body)
        .map_err(|_| "customer name missing")
        .and_then(|r| CustomerName::parse(r.name))
        .map_err(|reason| {
            state
                .diagnostics
                .log(trace, format!("create customer rejected: {reason}"));
            ApiError::bad_request(reason)
        })?;
    state.diagnostics.log(trace, "creating customer");
    let document = CustomerDocument {
        name: name.as_str(),
        date_created: now_ms(),
    };
    let document = serde_json::to_string(&document).map_err(|e| ApiError::internal(&e))?;
    let id = state
        .internal
        .create(document, trace)
        .await
        .map_err(|e| upstream_error(state, trace, "create customer", e))?;
    state
        .diagnostics
        .log(trace, format!("created customer {id}"));
    let body = serde_json::to_string(&Created {
        customer_id: id.as_str(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    Ok(json(StatusCode::OK, body))
}
