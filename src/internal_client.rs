//! The public tier's client for the internal tier: pooled keep-alive
//! connections, a connect timeout, a whole-request deadline, and no retries
//! (a create is not idempotent, so it is never sent twice).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::domain::{DocId, TraceToken};
use crate::settings::PublicSettings;
use crate::telemetry::names::{self, TRACE_HEADER};
use crate::telemetry::otel::DependencyCall;

/// Everything needed to build a client; built once per actix worker so each
/// worker's connections stay on its own runtime.
#[derive(Clone)]
pub struct InternalClientConfig {
    base: String,
    connect_timeout: Duration,
    timeout: Duration,
    /// Batch calls carry up to `batch.max_items` documents: their own deadline.
    batch_timeout: Duration,
    pool_max_idle: usize,
    /// Mutual TLS to the internal tier (only the private CA is trusted);
    /// None: plain HTTP, allowed only where the settings allow it.
    tls: Option<rustls::ClientConfig>,
    /// Swaps the certificate and CA inside `tls` (every worker's client shares them).
    tls_reloader: Option<Arc<crate::tls::Reloader>>,
}

impl InternalClientConfig {
    pub fn new(settings: &PublicSettings, base_url: &str) -> anyhow::Result<Self> {
        let (tls, tls_reloader) = crate::tls::internal_client(&settings.internal_tls)?.unzip();
        let config = InternalClientConfig {
            base: base_url.trim_end_matches('/').to_owned(),
            connect_timeout: Duration::from_millis(settings.internal_connect_timeout_ms),
            timeout: Duration::from_millis(settings.internal_timeout_ms),
            batch_timeout: Duration::from_millis(settings.internal_timeout_ms),
            pool_max_idle: settings.internal_pool_max_idle,
            tls,
            tls_reloader: tls_reloader.map(Arc::new),
        };
        config
            .build()
            .context("building the client for the internal tier")?;
        Ok(config)
    }

    pub fn with_batch_timeout(mut self, timeout: Duration) -> Self {
        self.batch_timeout = timeout;
        self
    }

    pub fn tls_reloader(&self) -> Option<Arc<crate::tls::Reloader>> {
        self.tls_reloader.clone()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn build(&self) -> anyhow::Result<InternalClient> {
        let mut builder = reqwest::Client::builder();
        if let Some(tls) = &self.tls {
            builder = builder.tls_backend_preconfigured(tls.clone());
        }
        let http = builder
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_max_idle_per_host(self.pool_max_idle)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cinemo-public/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(InternalClient {
            http,
            base: self.base.clone(),
            batch_timeout: self.batch_timeout,
        })
    }
}

#[derive(Clone)]
pub struct InternalClient {
    http: reqwest::Client,
    base: String,
    batch_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("internal tier unreachable: {0}")]
    Unreachable(String),
    #[error("internal tier did not answer in time")]
    Timeout,
    /// The internal tier answered with a status the caller did not expect.
    #[error("internal tier answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("internal tier sent an unreadable answer: {0}")]
    BadResponse(String),
}

impl InternalError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            InternalError::Timeout
        } else if e.is_connect() {
            InternalError::Unreachable(error_chain(&e))
        } else if e.is_decode() || e.is_body() {
            InternalError::BadResponse(error_chain(&e))
        } else {
            InternalError::Unreachable(error_chain(&e))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Deserialize)]
struct BatchCreated {
    ids: Vec<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// What the internal tier answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn parts(self) -> (StatusCode, Bytes) {
        (self.status, self.body)
    }
}

impl InternalClient {
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        trace: Option<&TraceToken>,
    ) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(trace) = trace {
            req = req.header(TRACE_HEADER, trace.as_str());
        }
        req
    }

    /// Sends with a client span (its `traceparent` goes along, so the
    /// internal tier's span joins the same trace) and a latency measurement.
    async fn send(span: &str, mut req: reqwest::RequestBuilder) -> Result<Answer, InternalError> {
        let call = DependencyCall::start(names::PEER_INTERNAL, || span.to_owned());
        let mut headers = reqwest::header::HeaderMap::new();
        call.inject_headers(&mut headers);
        if !headers.is_empty() {
            req = req.headers(headers);
        }
        let result = async {
            let mut response = req.send().await.map_err(InternalError::from_reqwest)?;
            let status = response.status();
            // Moved out, not cloned: most callers never look at them.
            let headers = std::mem::take(response.headers_mut());
            let body = response
                .bytes()
                .await
                .map_err(InternalError::from_reqwest)?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        call.finish(match &result {
            Ok(answer) if !answer.status.is_server_error() => names::OUTCOME_SUCCESS,
            Err(InternalError::Timeout) => names::OUTCOME_TIMEOUT,
            _ => names::OUTCOME_FAIL,
        });
        result
    }

    fn unexpected(status: StatusCode, body: &[u8]) -> InternalError {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        InternalError::Status { status, body: text }
    }

    /// The stored document as JSON bytes (`_id` first), or None on 404.
    pub async fn get_cache(
        &self,
        id: &DocId,
        trace: Option<&TraceToken>,
    ) -> Result<Option<Bytes>, InternalError> {
        let req = self.request(reqwest::Method::GET, &format!("/api/cache/{id}"), trace);
        match Self::send("GET /api/cache/{id}", req).await?.parts() {
            (StatusCode::OK, body) => Ok(Some(body)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Stores a document; returns its id.
    pub async fn create(
        &self,
        document: String,
        trace: Option<&TraceToken>,
    ) -> Result<DocId, InternalError> {
        let req = self
            .request(reqwest::Method::POST, "/api/cache", trace)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(document);
        match Self::send("POST /api/cache", req).await?.parts() {
            (StatusCode::OK, body) => {
                let created: Created = serde_json::from_slice(&body)
                    .map_err(|e| InternalError::BadResponse(e.to_string()))?;
                DocId::parse(&created.id).ok_or_else(|| {
                    InternalError::BadResponse(format!("malformed id {:?}", created.id))
                })
            }
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Stores a batch (a JSON array of documents) all or nothing. Returns the
    /// ids in input order and whether the internal tier replayed an earlier
    /// batch with the same idempotency key.
    pub async fn create_batch(
        &self,
        documents: String,
        idempotency: Option<(&str, &str)>,
        trace: Option<&TraceToken>,
    ) -> Result<(Vec<DocId>, bool), InternalError> {
        let mut req = self
            .request(reqwest::Method::POST, "/api/cache/batch", trace)
            .timeout(self.batch_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(documents);
        if let Some((key, fingerprint)) = idempotency {
            req = req
                .header("Idempotency-Key", key)
                .header("Idempotency-Fingerprint", fingerprint);
        }
        let Answer {
            status,
            headers,
            body,
        } = Self::send("POST /api/cache/batch", req).await?;
        if status != StatusCode::OK {
            return Err(Self::unexpected(status, &body));
        }
        let replayed = headers.contains_key("idempotent-replayed");
        let created: BatchCreated =
            serde_json::from_slice(&body).map_err(|e| InternalError::BadResponse(e.to_string()))?;
        let ids = created
            .ids
            .iter()
            .map(|id| {
                DocId::parse(id)
                    .ok_or_else(|| InternalError::BadResponse(format!("malformed id {id:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, replayed))
    }

    /// One page of documents, as the internal tier's JSON.
    pub async fn list(
        &self,
        limit: u32,
        after: Option<&DocId>,
        trace: Option<&TraceToken>,
    ) -> Result<Bytes, InternalError> {
        let path = match after {
            Some(after) => format!("/api/cache?limit={limit}&after={after}"),
            None => format!("/api/cache?limit={limit}"),
        };
        match Self::send(
            "GET /api/cache",
            self.request(reqwest::Method::GET, &path, trace),
        )
        .await?
        .parts()
        {
            (StatusCode::OK, body) => Ok(body),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Deletes a document; false when there was none.
    pub async fn delete(
        &self,
        id: &DocId,
        trace: Option<&TraceToken>,
    ) -> Result<bool, InternalError> {
        let req = self.request(reqwest::Method::DELETE, &format!("/api/cache/{id}"), trace);
        match Self::send("DELETE /api/cache/{id}", req).await?.parts() {
            (StatusCode::NO_CONTENT, _) => Ok(true),
            (StatusCode::NOT_FOUND, _) => Ok(false),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Whether the internal tier's process answers (its liveness route).
    pub async fn live(&self) -> Result<(), InternalError> {
        match Self::send(
            "GET /api/health/live",
            self.request(reqwest::Method::GET, "/api/health/live", None),
        )
        .await?
        .parts()
        {
            (StatusCode::OK, _) => Ok(()),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }
}
