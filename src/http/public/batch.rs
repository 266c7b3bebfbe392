//! `POST /api/customers/batch`: every item checked like a single create,
//! then stored all together through the internal tier, or not at all.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::value::RawValue;

use super::customers::{CreateRequest, CustomerDocument, customer_name};
use super::state::{PublicState, trace_of, upstream_error};
use crate::domain::clock::now_ms;
use crate::domain::{DocId, IdempotencyKey, fingerprint};
use crate::http::batch::{self, BatchLimits};
use crate::http::error::ApiError;
use crate::http::response::json;
use crate::http::schemas;
use crate::internal_api::{Failure, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::internal_client::InternalError;

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
        let name = customer_name(item.get().as_bytes()).map_err(|reason| {
            ApiError::with_text(StatusCode::BAD_REQUEST, format!("item {i}: {reason}"))
        })?;
        if i > 0 {
            documents.push(',');
        }
        let document = serde_json::to_string(&CustomerDocument::new(&name, now))
            .map_err(|e| ApiError::internal(&e))?;
        documents.push_str(&document);
    }
    documents.push(']');
    Ok((documents, fp))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BatchCreated<'a> {
    /// The new customers' ids, in the order of the items.
    #[serde(rename = "customerIds")]
    #[schema(value_type = Vec<String>)]
    customer_ids: Vec<&'a str>,
}

#[utoipa::path(post, path = "/api/customers/batch", tag = "customers",
    params(schemas::IdempotencyKey, schemas::Trace),
    request_body(content = Vec<CreateRequest>, content_type = "application/json", description = "Customers to create, all or none"),
    responses(
        (status = 200, description = "Created, all of them", body = BatchCreated<'static>, content_type = "application/json",
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers an earlier batch with the same key")),
        ),
        (status = 400, description = "`body must be a JSON array of customers`, `batch is empty`, `batch has N items, more than the maximum of M`, `item N: <the create text>` (`customer name missing`, `name must be a string`, `customer name too long`), `malformed Idempotency-Key...`", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `batch.max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 422, description = "`Idempotency-Key was already used with a different payload`", body = String, content_type = "text/plain"),
        (status = 429, description = "Over this client's rate limit, or `too many batches in progress, retry later`", body = String, content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds"))),
        schemas::InternalTierFailed,
    ))]
/// `[{"name": ...}, ...]`: every item checked like a single create, then
/// stored all together through the internal tier, or not at all.
pub(crate) async fn create_batch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PublicState>,
    limits: web::Data<BatchLimits>,
) -> Result<HttpResponse, ApiError> {
    let _slot = limits.enter()?;
    let trace = trace_of(&req);
    let trace = trace.as_ref();
    let key = batch::idempotency_header(&req, IDEMPOTENCY_KEY)?.map(str::to_owned);
    let (max_items, want_fingerprint) = (limits.max_items, key.is_some());
    let (documents, fp) = batch::parse_off_thread(
        move || build_batch(&body, max_items, want_fingerprint),
        &state.diagnostics,
        trace,
    )
    .await?;
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
            // The internal tier's answers the client must see as they are.
            InternalError::Refused(Failure::KeyReused) => ApiError::failure(Failure::KeyReused),
            InternalError::Refused(Failure::BatchesBusy) => limits.busy(),
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
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}
