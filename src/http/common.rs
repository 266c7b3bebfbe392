//! Routes every tier serves besides its readiness check.

use actix_web::HttpResponse;
use actix_web::http::{Method, StatusCode};
use serde::Serialize;

use super::response::{json, text};
use super::routes::Routes;
use crate::build_info;
use crate::internal_api::LIVE;
use crate::settings::Mode;

#[derive(Serialize)]
struct Version {
    version: &'static str,
    git_sha: &'static str,
    channel: &'static str,
    mode: &'static str,
}

/// `/api/health/live` and `/api/version`. `mode` is the process's mode, so
/// both tiers of an `all` process say `all`.
pub fn routes(routes: &mut Routes, mode: Mode) {
    let version = Version {
        version: build_info::VERSION,
        git_sha: build_info::GIT_SHA,
        channel: build_info::CHANNEL,
        mode: mode.as_str(),
    };
    // A struct of strings always serializes.
    let version = serde_json::to_string(&version).expect("the version serializes");
    routes
        .add(Method::GET, LIVE, live)
        .add(Method::GET, "/api/version", move || {
            let body = version.clone();
            async move { json(StatusCode::OK, body) }
        });
}

/// Liveness: answers as long as the process serves, touching nothing else.
async fn live() -> HttpResponse {
    text(StatusCode::OK, "OK")
}

/// Unknown routes: a short text instead of an empty body.
pub async fn not_found() -> HttpResponse {
    text(StatusCode::NOT_FOUND, "not found")
}
