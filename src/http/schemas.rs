//! Types that only describe answers and parameters in the OpenAPI
//! documents (`openapi.rs`); the handlers write the bodies themselves.

use std::collections::HashMap;

use serde::Serialize;

/// A customer as the public tier returns it: the stored document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoredCustomer {
    #[serde(rename = "_id")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    id: String,
    name: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "dateCreated")]
    date_created: Option<i64>,
}

/// Any stored JSON object, with the `_id` the internal tier assigned.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoredDocument {
    #[serde(rename = "_id")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    id: String,
}

/// Any JSON object without a top-level `_id`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewDocument(HashMap<String, serde_json::Value>);

/// The optional trace token (printable ASCII, at most 128 characters); an
/// invalid one is ignored, never an error.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header, names("X-Trace"))]
pub struct Trace(#[allow(dead_code)] Option<String>);

/// One page of `GET /api/customers`, in id order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerPage {
    items: Vec<StoredCustomer>,
    /// The last id of this page when another page follows (pass it as
    /// `after`); null on the last page.
    #[schema(pattern = "^[0-9a-f]{24}$")]
    next: Option<String>,
}

/// One page of `GET /api/cache`, in id order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentPage {
    items: Vec<StoredDocument>,
    /// The last id of this page when another page follows (pass it as
    /// `after`); null on the last page.
    #[schema(pattern = "^[0-9a-f]{24}$")]
    next: Option<String>,
}

/// Which page of a list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Page {
    /// Documents on the page: 1 to 1000, 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the previous page; absent or empty for the first.
    #[param(pattern = "^([0-9a-fA-F]{24})?$")]
    after: Option<String>,
}

/// A batch's key: the same key with the same payload replays the first
/// batch's answer, with another payload it is refused (422). 1 to 255
/// printable ASCII characters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header, names("Idempotency-Key"))]
pub struct IdempotencyKey(#[allow(dead_code)] Option<String>);

/// Sent by the public tier with a key: the fingerprint of what its client
/// sent (hex digits and dashes, at most 40).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header, names("Idempotency-Fingerprint"))]
pub struct IdempotencyFingerprint(#[allow(dead_code)] Option<String>);

/// The public tier's answers when the internal tier fails.
#[derive(utoipa::IntoResponses)]
pub enum InternalTierFailed {
    #[response(
        status = 502,
        description = "The internal tier failed or is unreachable",
        content_type = "text/plain"
    )]
    Failed(String),
    #[response(
        status = 503,
        description = "The internal tier is unavailable",
        content_type = "text/plain"
    )]
    Unavailable(String),
    #[response(
        status = 504,
        description = "The internal tier or its storage timed out",
        content_type = "text/plain"
    )]
    TimedOut(String),
}

/// A client over its budget (public tier).
#[derive(utoipa::IntoResponses)]
pub enum RateLimited {
    #[response(status = 429, description = "Over this client's rate limit", content_type = "text/plain", headers(("Retry-After" = u64, description = "seconds")))]
    TooMany(String),
}

/// A request target longer than `http.max_uri_bytes`.
#[derive(utoipa::IntoResponses)]
pub enum UriTooLong {
    #[response(
        status = 414,
        description = "`URI too long`",
        content_type = "text/plain"
    )]
    TooLong(String),
}

/// The internal tier's answer while storage is unreachable or too slow.
#[derive(utoipa::IntoResponses)]
pub enum StorageDown {
    #[response(
        status = 504,
        description = "Storage unavailable or too slow (`MongoDB not connected`, the old text)",
        content_type = "text/plain"
    )]
    Unavailable(String),
}
