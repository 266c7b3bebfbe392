//! The public tier: the customers API, in front of the internal tier.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use serde_json::value::RawValue;

use super::batch::{self, BatchLimits, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, ListQuery};
use super::{ApiError, json, text};
use crate::domain::clock::now_ms;
use crate::domain::{CustomerName, DocId, IdempotencyKey, TraceToken, fingerprint};
use crate::internal_client::{InternalClient, InternalError};
use crate::telemetry::Diagnostics;
use crate::telemetry::names::{self, TRACE_HEADER};
use crate::telemetry::trace_context;

pub struct PublicState {
    pub internal: InternalClient,
    pub diagnostics: Diagnostics,
}

/// `limits` is shared by every worker of the tier; the batch route gets its
/// own body size limit, the other routes keep the app-wide one.
pub fn routes(cfg: &mut web::ServiceConfig, limits: &BatchLimits) {
    cfg.service(
        web::resource("/api/customers/batch")
            .app_data(web::PayloadConfig::new(limits.max_body_bytes))
            .app_data(web::Data::new(limits.clone()))
            .route(web::post().to(create_batch))
            // As an id, "batch" is malformed: GET and DELETE answer the 400
            // the old service gave, not a 405 from this resource.
            .route(web::get().to(read))
            .route(web::delete().to(delete))
            .route(super::options("POST,GET,HEAD,DELETE")),
    )
    .route("/api/health", web::get().to(health))
    .route("/api/health", super::options("GET,HEAD"))
    .route("/api/customers", web::post().to(create))
    .route("/api/customers", web::get().to(list))
    .route("/api/customers", super::options("POST,GET,HEAD"))
    .route("/api/customers/{id}", web::get().to(read))
    .route("/api/customers/{id}", web::delete().to(delete))
    .route("/api/customers/{id}", super::options("GET,HEAD,DELETE"));
}

/// The request's trace token: `X-Trace` when present; otherwise the trace
/// id of a valid W3C `traceparent`, so a caller that only speaks W3C trace
/// context still gets log frames (docs/telemetry.md). The internal tier
/// only reads `X-Trace`, which this tier forwards.
fn trace_of(req: &HttpRequest) -> Option<TraceToken> {
    let Some(raw) = req.headers().get(TRACE_HEADER) else {
        if !req.headers().contains_key(names::TRACEPARENT_HEADER) {
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

/// What the public tier answers when the internal tier fails; the cause is
/// logged (and written to the trace log when the request is traced).
fn upstream_error(
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
    count_outcome(
        d,
        &result,
        names::READ_CUSTOMER_SUCCESS,
        names::READ_CUSTOMER_FAIL,
    );
    result
}

/// Counts how one create or read ended. The contract's frames count every
/// answer but 200 as `fail`, as the old service did, and old consumers
/// read them so. The OpenTelemetry twin, which the `customer-*-failures`
/// alarms and the rollout gate read, counts only the answers where cinemo
/// or what it depends on failed (5xx): a client asking for an id that does
/// not exist, or sending a bad name, must not page the duty manager or
/// roll a release back. Such an answer is an `attempt` and nothing else
/// there (docs/telemetry.md).
fn count_outcome(
    d: &Diagnostics,
    result: &Result<HttpResponse, ApiError>,
    success: &'static str,
    fail: &'static str,
) {
    match result {
        Ok(_) => d.metric(success),
        Err(e) if e.status().is_server_error() => d.metric(fail),
        Err(_) => d.metric_frame(fail),
    }
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
    // One frame per outcome, none before the call: every call ends (within
    // the internal timeout) in exactly one of the frames below, which says
    // what happened and why.
    match state.internal.get_cache(&id, trace).await {
        Ok(Some(body)) => {
            state
                .diagnostics
                .log(trace, format_args!("read customer {id}"));
            Ok(json(StatusCode::OK, body))
        }
        Ok(None) => {
            state
                .diagnostics
                .log(trace, format_args!("customer {id} not found"));
            Err(ApiError::not_found("cacheId not found"))
        }
        Err(e) => Err(upstream_error(state, trace, "read customer", e)),
    }
}

#[derive(utoipa::ToSchema)]
pub(crate) struct CreateRequest {
    /// Any non-empty string of at most 1024 characters.
    #[schema(min_length = 1, max_length = 1024)]
    name: String,
}

/// Reads a create body as the old service's `JSON.parse` did: any JSON
/// object, other fields ignored, and a repeated `name` keeps its last value
/// (serde's derive refuses a repeated field, which made a valid body a 400).
/// It must then be a string.
impl<'de> Deserialize<'de> for CreateRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> serde::de::Visitor<'de> for Body {
            type Value = CreateRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object with a string `name`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CreateRequest, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        name = Some(map.next_value::<serde_json::Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                match name {
                    Some(serde_json::Value::String(name)) => Ok(CreateRequest { name }),
                    _ => Err(serde::de::Error::missing_field("name")),
                }
            }
        }
        d.deserialize_map(Body)
    }
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
    count_outcome(
        d,
        &result,
        names::CREATE_CUSTOMER_SUCCESS,
        names::CREATE_CUSTOMER_FAIL,
    );
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
                .log(trace, format_args!("create customer rejected: {reason}"));
            ApiError::bad_request(reason)
        })?;
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
        .log(trace, format_args!("created customer {id}"));
    let body = serde_json::to_string(&Created {
        customer_id: id.as_str(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    Ok(json(StatusCode::OK, body))
}

/// Checks every item like a single create and builds the JSON array of
/// documents for the internal tier; with `want_fingerprint`, also the
/// fingerprint of what the client sent (the documents get a new
/// `dateCreated` on every retry, so they cannot be fingerprinted).
fn build_batch(
    body: &[u8],
    max_items: usize,
    want_fingerprint: bool,
) -> Result<(String, Option<String>), ApiError> {
    let raw: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("body must be a JSON array of customers"))?;
    batch::check_count(raw.len(), max_items)?;
    let fp = want_fingerprint
        .then(|| fingerprint(&raw.iter().map(|r| r.get().as_bytes()).collect::<Vec<_>>()));
    let now = now_ms();
    let mut documents = String::with_capacity(raw.len() * 48 + 2);
    documents.push('[');
    for (i, item) in raw.iter().enumerate() {
        let name = serde_json::from_str::<CreateRequest>(item.get())
            .map_err(|_| "customer name missing")
            .and_then(|r| CustomerName::parse(r.name))
            .map_err(|reason| {
                ApiError::with_text(StatusCode::BAD_REQUEST, format!("item {i}: {reason}"))
            })?;
        let doc = CustomerDocument {
            name: name.as_str(),
            date_created: now,
        };
        if i > 0 {
            documents.push(',');
        }
        documents.push_str(&serde_json::to_string(&doc).map_err(|e| ApiError::internal(&e))?);
    }
    documents.push(']');
    Ok((documents, fp))
}

#[derive(Serialize)]
struct BatchCreated<'a> {
    #[serde(rename = "customerIds")]
    customer_ids: Vec<&'a str>,
}

/// `[{"name": ...}, ...]`: every item checked like a single create, then
/// stored all together through the internal tier, or not at all.
async fn create_batch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PublicState>,
    limits: web::Data<BatchLimits>,
) -> Result<HttpResponse, ApiError> {
    let _slot = limits.enter()?;
    let trace = trace_of(&req);
    let trace = trace.as_ref();
    let key = batch::idempotency_header(&req, IDEMPOTENCY_KEY)?.map(str::to_owned);
    // Validating and building up to 100,000 documents would stall every
    // other request on this worker's event loop: it runs on the blocking pool.
    let (max_items, want_fingerprint) = (limits.max_items, key.is_some());
    let built = web::block(move || build_batch(&body, max_items, want_fingerprint))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let (documents, fp) = built.inspect_err(|e| {
        state
            .diagnostics
            .log(trace, format_args!("batch rejected: {}", e.message()));
    })?;
    let key = match (key, fp) {
        (Some(k), Some(fp)) => Some(IdempotencyKey::parse(&k, fp).ok_or(ApiError::bad_request(
            "malformed Idempotency-Key: 1 to 255 printable ASCII characters",
        ))?),
        _ => None,
    };
    let idempotency = key.as_ref().map(|k| (k.key(), k.fingerprint()));
    let (ids, replayed) = state
        .internal
        .create_batch(documents, idempotency, trace)
        .await
        .map_err(|e| match e {
            // Stable texts the client must see as they are.
            crate::internal_client::InternalError::Status { status, .. }
                if status.as_u16() == 422 =>
            {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, batch::KEY_REUSED)
            }
            crate::internal_client::InternalError::Status { status, .. }
                if status.as_u16() == 429 =>
            {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many batches in progress, retry later",
                )
                .retry_after(limits.retry_after_secs)
            }
            other => upstream_error(&state, trace, "create customer batch", other),
        })?;
    state
        .diagnostics
        .log(trace, format_args!("created {} customers", ids.len()));
    let body = serde_json::to_string(&BatchCreated {
        customer_ids: ids.iter().map(DocId::as_str).collect(),
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

/// `{"items": [...], "next": "<id>" | null}` from the internal tier.
async fn list(req: HttpRequest, state: web::Data<PublicState>) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let query = ListQuery::parse(req.query_string())?;
    let page = state
        .internal
        .list(query.limit, query.after.as_ref(), trace.as_ref())
        .await
        .map_err(|e| upstream_error(&state, trace.as_ref(), "list customers", e))?;
    Ok(json(StatusCode::OK, page))
}

async fn delete(req: HttpRequest, state: web::Data<PublicState>) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let raw = req.match_info().get("id").unwrap_or_default();
    let id = DocId::parse(raw).ok_or(ApiError::bad_request("malformed customerId"))?;
    match state.internal.delete(&id, trace.as_ref()).await {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(ApiError::not_found("cacheId not found")),
        Err(e) => Err(upstream_error(&state, trace.as_ref(), "delete customer", e)),
    }
}
