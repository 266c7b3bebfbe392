//! The internal tier's HTTP API as both sides speak it: the paths, headers,
//! answer bodies and failure texts that `http::internal` serves and
//! `internal_client` calls. Change one only together with both sides, and
//! with the old clients in mind: `cacheId not found` and `MongoDB not
//! connected` are the old service's texts.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::domain::DocId;

pub use crate::telemetry::names::TRACE_HEADER;

/// `POST` stores one document; `GET ?limit=N&after=ID` lists them.
pub const CACHE: &str = "/api/cache";
/// `POST` stores a JSON array of documents, all or none.
pub const CACHE_BATCH: &str = "/api/cache/batch";
/// `GET` reads, `DELETE` removes one document (route pattern).
pub const CACHE_ITEM: &str = "/api/cache/{id}";
/// Readiness: storage answers.
pub const HEALTH: &str = "/api/health";
/// Liveness: the process serves (every tier; the public tier's readiness).
pub const LIVE: &str = "/api/health/live";

/// `CACHE_ITEM` for one id.
pub fn cache_item(id: &DocId) -> String {
    format!("{CACHE}/{id}")
}

/// `CACHE` with the list query for one page.
pub fn cache_page(limit: u32, after: Option<&DocId>) -> String {
    match after {
        Some(after) => format!("{CACHE}?limit={limit}&after={after}"),
        None => format!("{CACHE}?limit={limit}"),
    }
}

/// The client's key for a batch (the public API takes the same header).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Sent by the public tier with a key: the fingerprint of the client's
/// payload, since the documents it builds carry a fresh `dateCreated` on
/// every retry.
pub const IDEMPOTENCY_FINGERPRINT: &str = "idempotency-fingerprint";
/// Set (to `true`) on an answer that replays an earlier batch with the
/// same key (the public API answers with the same header).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The `Content-Type` the public tier sends documents with.
pub const JSON_REQUEST: &str = "application/json";

/// `POST /api/cache` answers `{"id": "<24 hex>"}`.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Created<'a> {
    #[serde(borrow)]
    #[schema(value_type = String, pattern = "^[0-9a-f]{24}$")]
    pub id: Cow<'a, str>,
}

/// `POST /api/cache/batch` answers `{"ids": [...]}`, in input order.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchCreated<'a> {
    #[serde(borrow)]
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<Cow<'a, str>>,
}

/// The answers besides success that carry a meaning of their own: the
/// internal tier answers them with these statuses and texts, and the
/// public tier decodes them by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 404: no document with that id.
    NotFound,
    /// 504: storage did not answer in time or cannot be reached (any
    /// backend; the old text).
    StorageUnavailable,
    /// 503: the tier is not ready.
    Unavailable,
    /// 422: an `Idempotency-Key` used before with another payload.
    KeyReused,
    /// 429: too many batches in progress; retry later.
    BatchesBusy,
}

impl Failure {
    const ALL: [Failure; 5] = [
        Failure::NotFound,
        Failure::StorageUnavailable,
        Failure::Unavailable,
        Failure::KeyReused,
        Failure::BatchesBusy,
    ];

    pub const fn status(self) -> u16 {
        match self {
            Failure::NotFound => 404,
            Failure::StorageUnavailable => 504,
            Failure::Unavailable => 503,
            Failure::KeyReused => 422,
            Failure::BatchesBusy => 429,
        }
    }

    /// The body the internal tier sends.
    pub const fn text(self) -> &'static str {
        match self {
            Failure::NotFound => "cacheId not found",
            Failure::StorageUnavailable => "MongoDB not connected",
            Failure::Unavailable => "Unhealthy: storage unreachable",
            Failure::KeyReused => "Idempotency-Key was already used with a different payload",
            Failure::BatchesBusy => "too many batches in progress, retry later",
        }
    }

    /// The failure an answer's status means, if it is one of them.
    pub fn from_status(status: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.status() == status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_decodes_from_its_own_status() {
        for failure in Failure::ALL {
            assert_eq!(Failure::from_status(failure.status()), Some(failure));
        }
        for other in [200, 204, 400, 413, 500, 502] {
            assert_eq!(Failure::from_status(other), None, "{other}");
        }
    }

    #[test]
    fn paths_are_built_from_the_route_constants() {
        let id = DocId::parse("5f1d7a3b9c0e4a2b8d6f1e3c").unwrap();
        assert_eq!(cache_item(&id), "/api/cache/5f1d7a3b9c0e4a2b8d6f1e3c");
        assert_eq!(
            CACHE_ITEM.replace("{id}", id.as_str()),
            cache_item(&id),
            "the route pattern and the path agree"
        );
        assert_eq!(cache_page(5, None), "/api/cache?limit=5");
        assert_eq!(
            cache_page(5, Some(&id)),
            "/api/cache?limit=5&after=5f1d7a3b9c0e4a2b8d6f1e3c"
        );
    }
}
