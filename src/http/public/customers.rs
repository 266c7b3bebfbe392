//! The customers API: readiness, create, read, list, delete.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::state::{PublicState, trace_of, upstream_error};
use crate::domain::clock::now_ms;
use crate::domain::{CustomerName, DocId, TraceToken};
use crate::http::error::ApiError;
use crate::http::list::ListQuery;
use crate::http::response::{json, text};
use crate::http::schemas;
use crate::internal_api::Failure;
use crate::telemetry::Diagnostics;
use crate::telemetry::names;

/// Most customers one page of `GET /api/customers` holds.
pub const LIST_MAX: u32 = 1000;

#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "Ready: the internal tier answers", body = String, content_type = "text/plain", example = "Frontend healthy"),
        (status = 503, description = "The internal tier does not answer", body = String, content_type = "text/plain"),
        schemas::RateLimited,
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
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The customer id: 24 hexadecimal digits"), schemas::Trace),
    responses(
        (status = 200, description = "The stored customer document", body = schemas::StoredCustomer, content_type = "application/json"),
        (status = 400, description = "`malformed customerId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::RateLimited,
        schemas::InternalTierFailed,
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

/// The id in the request's path; 400 `malformed customerId` when it is not one.
fn path_id(req: &HttpRequest) -> Result<DocId, ApiError> {
    req.match_info()
        .get("id")
        .and_then(DocId::parse)
        .ok_or(ApiError::bad_request("malformed customerId"))
}

async fn read_inner(
    req: &HttpRequest,
    state: &PublicState,
    trace: Option<&TraceToken>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(req).inspect_err(|_| {
        state
            .diagnostics
            .log(trace, "read customer rejected: malformed customerId");
    })?;
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
            Err(ApiError::failure(Failure::NotFound))
        }
        Err(e) => Err(upstream_error(state, trace, "read customer", e)),
    }
}

/// The create body as the OpenAPI document describes it (`CreateBody`
/// reads it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateRequest {
    /// Any string of 1 to 1024 characters that is not only whitespace.
    #[schema(min_length = 1, max_length = 1024)]
    name: String,
}

/// What a create body says about `name`.
enum NameField {
    Given(String),
    /// Absent or `null`.
    Missing,
    /// A number, a boolean, an array or an object.
    NotAString,
}

/// A create body read as the old service's `JSON.parse` did: any JSON
/// object, other fields ignored, and a repeated `name` keeps its last value
/// (serde's derive refuses a repeated field, which made a valid body a 400).
struct CreateBody {
    name: NameField,
}

impl<'de> Deserialize<'de> for CreateBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> serde::de::Visitor<'de> for Body {
            type Value = CreateBody;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object with a string `name`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CreateBody, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        name = Some(map.next_value::<serde_json::Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                let name = match name {
                    Some(serde_json::Value::String(name)) => NameField::Given(name),
                    None | Some(serde_json::Value::Null) => NameField::Missing,
                    Some(_) => NameField::NotAString,
                };
                Ok(CreateBody { name })
            }
        }
        d.deserialize_map(Body)
    }
}

/// The 400 text when a create body has no usable name.
pub const NAME_MISSING: &str = "customer name missing";
/// The 400 text when `name` is there but not a string.
pub const NAME_NOT_A_STRING: &str = "name must be a string";

/// The customer name in one create body (a whole request's, or one item of
/// a batch), or the 400 text that says why there is none: the one place a
/// create body is read. An empty body, a body that is JSON but not an
/// object, and a blank name are all `customer name missing`; a body that is
/// not JSON says where it stops being JSON.
pub fn customer_name(body: &[u8]) -> Result<CustomerName, Cow<'static, str>> {
    match serde_json::from_slice::<CreateBody>(body) {
        Ok(CreateBody {
            name: NameField::Given(name),
        }) => CustomerName::parse(name).map_err(Cow::Borrowed),
        Ok(CreateBody {
            name: NameField::NotAString,
        }) => Err(Cow::Borrowed(NAME_NOT_A_STRING)),
        Ok(CreateBody {
            name: NameField::Missing,
        }) => Err(Cow::Borrowed(NAME_MISSING)),
        Err(e) if (e.is_syntax() || e.is_eof()) && !body.trim_ascii().is_empty() => {
            Err(Cow::Owned(format!("invalid JSON body: {e}")))
        }
        Err(_) => Err(Cow::Borrowed(NAME_MISSING)),
    }
}

/// The stored document; field order is the old service's.
#[derive(Serialize)]
pub struct CustomerDocument<'a> {
    name: &'a str,
    #[serde(rename = "dateCreated")]
    date_created: i64,
}

impl<'a> CustomerDocument<'a> {
    /// The document for `name`, created at `date_created` (epoch ms).
    pub fn new(name: &'a CustomerName, date_created: i64) -> Self {
        CustomerDocument {
            name: name.as_str(),
            date_created,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Created<'a> {
    #[serde(rename = "customerId")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    customer_id: &'a str,
}

#[utoipa::path(post, path = "/api/customers", tag = "customers",
    params(schemas::Trace),
    request_body(content = CreateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Created", body = Created<'static>, content_type = "application/json",
            links(("read" = (operation_id = "read", parameters(("id" = "$response.body#/customerId")), description = "The customer just created")))
        ),
        (status = 400, description = "`customer name missing` (no body, not an object, no `name`, `null`, empty or only whitespace), `name must be a string`, `customer name too long`, or `invalid JSON body: <what> at line L column C`", body = String, content_type = "text/plain"),
        (status = 408, description = "`request body timed out`", body = String, content_type = "text/plain"),
        (status = 413, description = "The body is larger than `public.max_body_bytes`", body = String, content_type = "text/plain"),
        schemas::RateLimited,
        schemas::InternalTierFailed,
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
    let name = customer_name(body).map_err(|reason| {
        state
            .diagnostics
            .log(trace, format_args!("create customer rejected: {reason}"));
        ApiError::with_text(StatusCode::BAD_REQUEST, reason.into_owned())
    })?;
    let document = serde_json::to_string(&CustomerDocument::new(&name, now_ms()))
        .map_err(|e| ApiError::internal(&e))?;
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

#[utoipa::path(get, path = "/api/customers", tag = "customers",
    params(schemas::Page, schemas::Trace),
    responses(
        (status = 200, description = "One page of customers, in id order", body = schemas::CustomerPage, content_type = "application/json"),
        (status = 400, description = "`limit must be an integer from 1 to 1000`, `malformed after: expected a 24-hex id` or `malformed query string`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::RateLimited,
        schemas::InternalTierFailed,
    ))]
/// `{"items": [...], "next": "<id>" | null}` from the internal tier.
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<PublicState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let query = ListQuery::parse(req.query_string(), LIST_MAX)?;
    let page = state
        .internal
        .list(query.limit, query.after.as_ref(), trace.as_ref())
        .await
        .map_err(|e| upstream_error(&state, trace.as_ref(), "list customers", e))?;
    Ok(json(StatusCode::OK, page))
}

#[utoipa::path(delete, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{24}$", description = "The customer id: 24 hexadecimal digits"), schemas::Trace),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`malformed customerId`", body = String, content_type = "text/plain"),
        (status = 404, description = "`cacheId not found`", body = String, content_type = "text/plain"),
        schemas::UriTooLong,
        schemas::RateLimited,
        schemas::InternalTierFailed,
    ))]
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<PublicState>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace_of(&req);
    let id = path_id(&req)?;
    match state.internal.delete(&id, trace.as_ref()).await {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(ApiError::failure(Failure::NotFound)),
        Err(e) => Err(upstream_error(&state, trace.as_ref(), "delete customer", e)),
    }
}
