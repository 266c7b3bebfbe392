//! The internal tier: a cache of JSON documents over the configured store.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use serde_json::value::RawValue;

use super::batch::{self, BatchLimits};
use super::error::ApiError;
use super::list::ListQuery;
use super::response::{json, options, text};
use crate::domain::{
    DocId, Document, DocumentError, IdempotencyKey, TraceToken, fingerprint, is_fingerprint,
};
use crate::internal_api::{
    self as api, Failure, IDEMPOTENCY_FINGERPRINT, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED,
    TRACE_HEADER,
};
use crate::storage::{BatchOutcome, LIST_MAX, Store, StoreError};
use crate::telemetry::Diagnostics;

pub struct InternalState {
    pub store: Arc<dyn Store>,
    pub diagnostics: Diagnostics,
}

/// `limits` is shared by every worker of the tier; the batch route gets its
/// own body size limit, the other routes keep the app-wide one.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &BatchLimits) {
    cfg.service(
        web::resource(api::CACHE_BATCH)
            .app_data(web::PayloadConfig::new(limits.max_body_bytes))
            .app_data(web::Data::new(limits.clone()))
            .route(web::post().to(create_batch))
            // As an id, "batch" is malformed: GET and DELETE answer the 400
            // the old service gave, not a 405 from this resource.
            .route(web::get().to(read))
            .route(web::delete().to(delete))
            .route(options("POST,GET,HEAD,DELETE")),
    )
    .route(api::HEALTH, web::get().to(health))
    .route(api::HEALTH, options("GET,HEAD"))
    .route(api::CACHE, web::post().to(create))
    .route(api::CACHE, web::get().to(list))
    .route(api::CACHE, options("POST,GET,HEAD"))
    .route(api::CACHE_ITEM, web::get().to(read))
    .route(api::CACHE_ITEM, web::delete().to(delete))
    .route(api::CACHE_ITEM, options("GET,HEAD,DELETE"));
}

fn trace_of(req: &HttpRequest) -> Option<TraceToken> {
    req.headers()
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceToken::parse)
}

fn storage_error(state: &InternalState, trace: Option<&TraceToken>, e: StoreError) -> ApiError {
    state
        .diagnostics
        .log(trace, format_args!("storage failed: {e}"));
    match e {
        // The old service's text for every storage outage, kept for
        // clients that match on it; the logs name the real backend and cause.
        StoreError::Unavailable(cause) => {
            tracing::warn!(backend = state.store.backend(), %cause, "storage unavailable");
            ApiError::failure(Failure::StorageUnavailable)
        }
        StoreError::IdempotencyConflict => ApiError::failure(Failure::KeyReused),
        rejected @ StoreError::Rejected(_) => {
            ApiError::with_text(StatusCode::BAD_REQUEST, rejected.to_string())
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
            ApiError::failure(Failure::Unavailable).error_response()
        }
    }
}

#[utoipa::path(get, path = "/api/cache/{id}", tag = "cache",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The document id: 24 hexadecimal digits"), super::schemas::Trace),
    responses(
        (status = 200, description = "The stored document with its `_id` first", body = super::schemas::StoredDocument, content_type = "application/json"),
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
            state
                .diagnostics
                .log(trace.as_ref(), format_args!("read {id}"));
            Ok(json(StatusCode::OK, doc.to_json_with_id(&id)))
        }
        Ok(None) => {
            state
                .diagnostics
                .log(trace.as_ref(), format_args!("read {id}: not found"));
            Err(ApiError::failure(Failure::NotFound))
        }
        Err(e) => Err(storage_error(&state, trace.as_ref(), e)),
    }
}

#[utoipa::path(post, path = "/api/cache", tag = "cache",
    params(super::schemas::Trace),
    request_body(content = super::schemas::NewDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = api::Created<'static>, content_type = "application/json",
            links(("read" = (operation_id = "read", parameters(("id" = "$response.body#/id")), description = "The document just stored")))
        ),
        (status = 400, description = "`missing body` (not one JSON object), `_id is assigned by the server`, or on MongoDB `document cannot be stored: <reason>` (a NUL in a key, a number beyond a double, a lone UTF-16 surrogate, nesting beyond 100 levels)", body = String, content_type = "text/plain"),
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
            .log(trace.as_ref(), format_args!("create rejected: {e}"));
        match e {
            DocumentError::NotAnObject => ApiError::bad_request("missing body"),
            DocumentError::HasId => document_error(None, e),
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
        .log(trace.as_ref(), format_args!("stored {id}"));
    let created = api::Created {
        id: id.as_str().into(),
    };
    let body = serde_json::to_string(&created).map_err(|e| ApiError::internal(&e))?;
    Ok(json(StatusCode::OK, body))
}

fn document_error(index: Option<usize>, e: DocumentError) -> ApiError {
    let reason = match e {
        DocumentError::NotAnObject => "not a JSON object",
        DocumentError::HasId => "_id is assigned by the server",
    };
    match index {
        Some(i) => ApiError::with_text(StatusCode::BAD_REQUEST, format!("item {i}: {reason}")),
        None => ApiError::bad_request(reason),
    }
}

/// A JSON array of objects, each with a fresh id; an invalid item is named.
fn parse_batch(body: &[u8], max_items: usize) -> Result<Vec<(DocId, Document)>, ApiError> {
    let raw: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("body must be a JSON array of objects"))?;
    batch::check_count(raw.len(), max_items)?;
    raw.iter()
        .enumerate()
        .map(|(i, item)| {
            let doc =
                Document::parse(item.get().as_bytes()).map_err(|e| document_error(Some(i), e))?;
            Ok((DocId::generate(), doc))
        })
        .collect()
}

/// A JSON array of objects, stored all together or not at all.
async fn create_batch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<InternalState>,
    limits: web::Data<BatchLimits>,
) -> Result<HttpResponse, ApiError> {
    let _slot = limits.enter()?;
    let trace = trace_of(&req);
    // Parsing up to 100,000 items takes long enough to stall every other
    // request on this worker's event loop: it runs on the blocking pool.
    let max_items = limits.max_items;
    let parsed = web::block(move || parse_batch(&body, max_items))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let items = parsed.inspect_err(|e| {
        state.diagnostics.log(
            trace.as_ref(),
            format_args!("batch rejected: {}", e.message()),
        );
    })?;
    let key = match batch::idempotency_header(&req, IDEMPOTENCY_KEY)? {
        None => None,
        Some(raw_key) => {
            let fp = match batch::idempotency_header(&req, IDEMPOTENCY_FINGERPRINT)? {
                Some(fp) if is_fingerprint(fp) => fp.to_owned(),
                Some(_) => return Err(ApiError::bad_request("malformed Idempotency-Fingerprint")),
                None => {
                    let parts: Vec<&[u8]> =
                        items.iter().map(|(_, d)| d.as_str().as_bytes()).collect();
                    fingerprint(&parts)
                }
            };
            Some(
                IdempotencyKey::parse(raw_key, fp).ok_or(ApiError::bad_request(
                    "malformed Idempotency-Key: 1 to 255 printable ASCII characters",
                ))?,
            )
        }
    };
    let outcome = state
        .store
        .insert_batch(&items, key.as_ref())
        .await
        .map_err(|e| storage_error(&state, trace.as_ref(), e))?;
    let replayed = matches!(outcome, BatchOutcome::Replayed(_));
    state.diagnostics.log(
        trace.as_ref(),
        format_args!(
            "batch of {} {}",
            outcome.ids().len(),
            if replayed { "replayed" } else { "stored" }
        ),
    );
    let body = serde_json::to_string(&api::BatchCreated {
        ids: outcome.ids().iter().map(|id| id.as_str().into()).collect(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    let mut response = json(StatusCode::OK, body);
    if replayed {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(IDEMPOTENT_REPLAYED),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `{"items": [...], "next": "<id>" | null}`, in id order.
async fn list(req: HttpRequest, state: web::Data<InternalState>) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let query = ListQuery::parse(req.query_string(), LIST_MAX)?;
    // One more than asked tells whether another page exists, so the last
    // page says `next: null` instead of sending the client to an empty one.
    let mut page = state
        .store
        .list(query.after.as_ref(), query.limit + 1)
        .await
        .map_err(|e| storage_error(&state, trace.as_ref(), e))?;
    let more = page.len() > query.limit as usize;
    page.truncate(query.limit as usize);
    let mut out = String::with_capacity(
        page.iter()
            .map(|(_, d)| d.as_str().len() + 36)
            .sum::<usize>()
            + 32,
    );
    out.push_str("{\"items\":[");
    for (i, (id, doc)) in page.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&doc.to_json_with_id(id));
    }
    out.push_str("],\"next\":");
    match page.last() {
        Some((id, _)) if more => {
            out.push('"');
            out.push_str(id.as_str());
            out.push('"');
        }
        _ => out.push_str("null"),
    }
    out.push('}');
    Ok(json(StatusCode::OK, out))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let raw = req.match_info().get("id").unwrap_or_default();
    let id = DocId::parse(raw).ok_or(ApiError::bad_request("malformed cacheId"))?;
    match state.store.delete(&id).await {
        Ok(true) => {
            state
                .diagnostics
                .log(trace.as_ref(), format_args!("deleted {id}"));
            Ok(HttpResponse::NoContent().finish())
        }
        Ok(false) => Err(ApiError::failure(Failure::NotFound)),
        Err(e) => Err(storage_error(&state, trace.as_ref(), e)),
    }
}
