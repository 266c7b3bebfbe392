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
