//! The OpenAPI 3 documents of both tiers, generated from the handlers'
//! `#[utoipa::path]` annotations, and an offline Swagger UI. Each tier
//! serves its own document at `/api/openapi.json` and the UI at `/api/docs`.
//! CI fuzzes both documents against the running binary (.ci/suites/fuzz.sh),
//! so a status code or body a route can return and the document does not
//! list is a failing build.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::http::{Method, StatusCode};
use serde::Serialize;
use utoipa::OpenApi;

use super::internal;
use super::public::{batch, customers};
use super::response::json;
use super::routes::Routes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Public,
    Internal,
}

/// `GET /api/health/live` (served by `common::routes`).
#[utoipa::path(get, path = "/api/health/live", tag = "health",
    responses((status = 200, description = "The process serves", body = String, content_type = "text/plain", example = "OK")))]
#[allow(dead_code)]
fn live() {}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Version {
    version: String,
    git_sha: String,
    /// `dev`, `edge`, `stable`, ...
    channel: String,
    #[schema(example = "public")]
    mode: String,
}

/// `GET /api/version` (served by `common::routes`).
#[utoipa::path(get, path = "/api/version", tag = "health",
    responses((status = 200, description = "Build and mode", body = Version, content_type = "application/json")))]
#[allow(dead_code)]
fn version() {}

/// `GET /api/openapi.json` (served by `routes`).
#[utoipa::path(get, path = "/api/openapi.json", tag = "docs",
    responses((status = 200, description = "This document", body = Object, content_type = "application/json")))]
#[allow(dead_code)]
fn openapi_json() {}

/// `GET /api/docs` (served by `routes`).
#[utoipa::path(get, path = "/api/docs", tag = "docs",
    responses((status = 200, description = "Swagger UI for this document", body = String, content_type = "text/html")))]
#[allow(dead_code)]
fn docs() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cinemo public API",
        description = "Customers API of the public tier. Errors are short `text/plain` texts."
    ),
    paths(
        customers::create,
        customers::read,
        customers::list,
        customers::delete,
        batch::create_batch,
        customers::health,
        live,
        version,
        openapi_json,
        docs
    )
)]
struct PublicApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cinemo internal API",
        description = "Cache API of the internal tier (mutual TLS in production). Errors are short `text/plain` texts."
    ),
    paths(
        internal::create,
        internal::read,
        internal::list,
        internal::delete,
        internal::create_batch,
        internal::health,
        live,
        version,
        openapi_json,
        docs
    )
)]
struct InternalApi;

/// The document of one tier as JSON.
pub fn document(tier: Tier) -> anyhow::Result<String> {
    let mut doc = match tier {
        Tier::Public => PublicApi::openapi(),
        Tier::Internal => InternalApi::openapi(),
    };
    doc.info.version = crate::build_info::VERSION.to_owned();
    doc.to_pretty_json()
        .map_err(|e| anyhow::anyhow!("cannot write the {tier:?} tier's OpenAPI document: {e}"))
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        (
            concat!("/api/docs/", $name),
            $type,
            include_bytes!(concat!("swagger/", $name)).as_slice(),
        )
    };
}

const ASSETS: [(&str, &str, &[u8]); 6] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("swagger-initializer.js", "text/javascript; charset=utf-8"),
    asset!("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    asset!("swagger-ui.css", "text/css; charset=utf-8"),
    asset!("index.css", "text/css; charset=utf-8"),
    asset!("favicon-32x32.png", "image/png"),
];

fn static_response(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(body)
}

/// `/api/openapi.json` (the tier's `document`) and the Swagger UI.
pub fn routes(routes: &mut Routes, document: String) {
    routes.add(Method::GET, "/api/openapi.json", move || {
        let body = document.clone();
        async move { json(StatusCode::OK, body) }
    });
    let (_, _, index) = ASSETS[0];
    routes.add(Method::GET, "/api/docs", move || async move {
        static_response("text/html; charset=utf-8", index)
    });
    for (path, content_type, body) in ASSETS {
        routes.asset(
            path,
            move || async move { static_response(content_type, body) },
        );
    }
}
