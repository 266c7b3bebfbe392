//! The internal tier: a cache of JSON documents over the configured store.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{ApiError, json, text};
use crate::domain::{DocId, Document, DocumentError, TraceToken};
use crate::storage::{Store, StoreError};
use crate::telemetry::Diagnostics;
use crate::telemetry::names::TRACE_HEADER;

pub struct InternalState {
    pub store: Arc<dyn Store>,
    pub diagnostics: Diagnostics,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/health", web::get().to(health))
        .route("/api/cache", web::post().to(create))
        .route("/api/cache/{id}", web::get().to(read));
}

fn trace_of(req: &HttpRequest) -> Option<TraceToken> {
    req.headers()
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceToken::parse)
}

/// The old service's text for every storage outage, kept for clients that
/// match on it; the logs name the real backend and cause.
const STORAGE_DOWN: ApiError = ApiError::new(StatusCode::GATEWAY_TIMEOUT, "MongoDB not connected");

fn storage_error(state: &InternalState, trace: Option<&TraceToken>, e: StoreError) -> ApiError {
    state.diagnostics.log(trace, format!("storage failed: {e}"));
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(backend = state.store.backend(), %cause, "storage unavailable");
            STORAGE_DOWN
        }
        other => ApiError::internal(&other),
    }
}

#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "Ready: storage answers", body = String, content_type = "text/plain", example = "Healthy"),
        (status = 503, description = "Storage does not answer", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn health(state: web::Data<InternalState>) -> HttpResponse {
    match state.store.health_check().await {
        Ok(()) => text(StatusCode::OK, "Healthy"),
        Err(e) => {
            tracing::warn!(backend = state.store.backend(), error = %e, "readiness check failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unhealthy: storage unreachable",
            )
        }
    }
}

#[utoipa::path(get, path = "/api/cache/{id}", tag = "cache",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The document id: 24 hexadecimal digits"), super::openapi::Trace),
    responses(
        (status = 200, description = "The stored document with its `_id` first", body = super::openapi::StoredDocument, content_type = "application/json"),
        (status = 400, description = "`malformed cacheId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        (status = 414, description = "`URI too long`", body = String, content_type = "text/plain"),
        (status = 504, description = "Storage unavailable or too slow (`MongoDB not connected`, the old text)", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn read(
    req: HttpRequest,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let raw = req.match_info().get("id").unwrap_or_default();
    let Some(id) = DocId::parse(raw) else {
        state
            .diagnostics
            .log(trace.as_ref(), "read rejected: malformed cacheId");
        return Err(ApiError::bad_request("malformed cacheId"));
    };
    match state.store.get(&id).await {
        Ok(Some(doc)) => {
            state.diagnostics.log(trace.as_ref(), format!("read {id}"));
            Ok(json(StatusCode::OK, doc.to_json_with_id(&id)))
        }
        Ok(None) => {
            state
                .diagnostics
                .log(trace.as_ref(), format!("read {id}: not found"));
            Err(ApiError::not_found("cacheId not found"))
        }
        Err(e) => Err(storage_error(&state, trace.as_ref(), e)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Created<'a> {
    #[schema(pattern = "^[0-9a-f]{24}$")]
    id: &'a str,
}

#[utoipa::path(post, path = "/api/cache", tag = "cache",
    params(super::openapi::Trace),
    request_body(content = super::openapi::NewDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = Created<'static>, content_type = "application/json",
            links(("read" = (operation_id = "read", parameters(("id" = "$response.body#/id")), description = "The document just stored")))
        ),
        (status = 400, description = "`missing body` (not one JSON object) or `_id is assigned by the server`", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `internal.max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 504, description = "Storage unavailable or too slow (`MongoDB not connected`, the old text)", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let doc = Document::parse(&body).map_err(|e| {
        state
            .diagnostics
            .log(trace.as_ref(), format!("create rejected: {e}"));
        match e {
            DocumentError::NotAnObject => ApiError::bad_request("missing body"),
            DocumentError::HasId => ApiError::bad_request("_id is assigned by the server"),
        }
    })?;
    let id = DocId::generate();
    state
        .store
        .insert(&id, &doc)
        .await
        .map_err(|e| storage_error(&state, trace.as_ref(), e))?;
    state
        .diagnostics
        .log(trace.as_ref(), format!("stored {id}"));
    let body =
        serde_json::to_string(&Created { id: id.as_str() }).map_err(|e| ApiError::internal(&e))?;
    Ok(json(StatusCode::OK, body))
}
