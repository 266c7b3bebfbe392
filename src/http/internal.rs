//! The internal tier: a cache of JSON documents over the configured store.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use serde_json::value::RawValue;

use super::batch::{self, BatchLimits};
use super::error::ApiError;
use super::list::ListQuery;
use super::response::{json, text};
use super::routes::Routes;
use super::schemas;
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
pub fn routes(routes: &mut Routes, limits: &BatchLimits) {
    routes
        .resource(
            api::CACHE_BATCH,
            // As an id, "batch" is malformed: GET and DELETE answer the 400
            // the old service gave, not a 405 from this resource.
            &[
                (Method::POST, api::CACHE_BATCH),
                (Method::GET, api::CACHE_ITEM),
                (Method::DELETE, api::CACHE_ITEM),
            ],
            web::resource(api::CACHE_BATCH)
                .app_data(web::PayloadConfig::new(limits.max_body_bytes))
                .app_data(web::Data::new(limits.clone()))
                .route(web::post().to(create_batch))
                .route(web::get().to(read))
                .route(web::delete().to(delete)),
        )
        .add(Method::GET, api::HEALTH, health)
        .add(Method::POST, api::CACHE, create)
        .add(Method::GET, api::CACHE, list)
        .add(Method::GET, api::CACHE_ITEM, read)
        .add(Method::DELETE, api::CACHE_ITEM, delete);
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
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The document id: 24 hexadecimal digits"), schemas::Trace),
    responses(
        (status = 200, description = "The stored document with its `_id` first", body = schemas::StoredDocument, content_type = "application/json"),
        (status = 400, description = "`malformed cacheId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::StorageDown,
    ))]
pub(crate) async fn read(
    req: HttpRequest,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let Some(id) = req.match_info().get("id").and_then(DocId::parse) else {
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
    params(schemas::Trace),
    request_body(content = schemas::NewDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = api::Created<'static>, content_type = "application/json",
            links(("read" = (operation_id = "read", parameters(("id" = "$response.body#/id")), description = "The document just stored")))
        ),
        (status = 400, description = "`missing body` (not one JSON object), `_id is assigned by the server`, or on MongoDB `document cannot be stored: <reason>` (a NUL in a key, a number beyond a double, a lone UTF-16 surrogate, nesting beyond 100 levels)", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `internal.max_body_bytes`", body = String, content_type = "text/plain"),
        schemas::StorageDown,
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

#[utoipa::path(post, path = "/api/cache/batch", tag = "cache",
    params(schemas::IdempotencyKey, schemas::IdempotencyFingerprint, schemas::Trace),
    request_body(content = Vec<schemas::NewDocument>, content_type = "application/json", description = "Documents to store, all or none"),
    responses(
        (status = 200, description = "Stored, all of them", body = api::BatchCreated<'static>, content_type = "application/json",
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers an earlier batch with the same key")),
        ),
        (status = 400, description = "`body must be a JSON array of objects`, `batch is empty`, `batch has N items, more than the maximum of M`, `item N: <reason>`, `malformed Idempotency-Key...` or `malformed Idempotency-Fingerprint`", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `batch.max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 422, description = "`Idempotency-Key was already used with a different payload`", body = String, content_type = "text/plain"),
        (status = 429, description = "`too many batches in progress, retry later`", body = String, content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds"))),
        schemas::StorageDown,
    ))]
/// A JSON array of objects, stored all together or not at all.
pub(crate) async fn create_batch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<InternalState>,
    limits: web::Data<BatchLimits>,
) -> Result<HttpResponse, ApiError> {
    let _slot = limits.enter()?;
    let trace = trace_of(&req);
    let max_items = limits.max_items;
    let items = batch::parse_off_thread(
        move || parse_batch(&body, max_items),
        &state.diagnostics,
        trace.as_ref(),
    )
    .await?;
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

#[utoipa::path(get, path = "/api/cache", tag = "cache",
    params(schemas::Page, schemas::Trace),
    responses(
        (status = 200, description = "One page of documents, in id order", body = schemas::DocumentPage, content_type = "application/json"),
        (status = 400, description = "`limit must be an integer from 1 to 1000`, `malformed after: expected a 24-hex id` or `malformed query string`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::StorageDown,
    ))]
/// `{"items": [...], "next": "<id>" | null}`, in id order.
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
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

#[utoipa::path(delete, path = "/api/cache/{id}", tag = "cache",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The document id: 24 hexadecimal digits"), schemas::Trace),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`malformed cacheId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::StorageDown,
    ))]
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<InternalState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let id = req
        .match_info()
        .get("id")
        .and_then(DocId::parse)
        .ok_or(ApiError::bad_request("malformed cacheId"))?;
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
