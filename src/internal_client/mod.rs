//! The public tier's client for the internal tier: multiplexed HTTP/2
//! connections (or pooled HTTP/1.1 keep-alive ones), a connect timeout, a
//! whole-request deadline, and no retries of a request that reached the
//! wire (a create is not idempotent, so it is never sent twice), but for
//! one more try of a read whose connection broke under it.
//!
//! Built on hyper's connection-level API rather than a general-purpose
//! client: every call goes to one fixed origin, so the URL parsing,
//! redirect and retry layers, shared pool lock and connector a general
//! client runs per request were a third of the public tier's own CPU on a
//! read. HTTP/2 carries many concurrent calls on one connection, so one
//! write and one read move many requests' frames: on loopback, where each
//! send costs the receiver's TCP work too, that was a quarter more reads
//! per second than HTTP/1.1 (docs/performance.md). Batches keep their own
//! HTTP/1.1 connections, so a 64 MiB import never sits in front of
//! customer reads on a shared TCP stream.

mod pool;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, StatusCode, Uri};
use rustls::pki_types::ServerName;
use serde::Deserialize;

use crate::domain::{DocId, TraceToken};
use crate::settings::PublicSettings;
use crate::telemetry::names::{self, TRACE_HEADER};
use crate::telemetry::otel::DependencyCall;
use pool::{Endpoint, H1Pool, H2Lanes, Tls};

const USER_AGENT_VALUE: &str = concat!("cinemo-public/", env!("CARGO_PKG_VERSION"));

/// Everything needed to build a client; built once per actix worker so each
/// worker's connections stay on its own thread.
#[derive(Clone)]
pub struct InternalClientConfig {
    shared: Arc<Shared>,
    /// Swaps the certificate and CA inside the TLS configuration (every
    /// worker's client shares them).
    tls_reloader: Option<Arc<crate::tls::Reloader>>,
}

/// What every worker's client shares.
struct Shared {
    endpoint: Arc<Endpoint>,
    scheme: Scheme,
    /// The URL's authority: `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    authority: Authority,
    host_header: HeaderValue,
    http2: bool,
    timeout: Duration,
    /// Batch calls carry up to `batch.max_items` documents: their own deadline.
    batch_timeout: Duration,
}

impl InternalClientConfig {
    pub fn new(settings: &PublicSettings, base_url: &str) -> anyhow::Result<Self> {
        let (tls, tls_reloader) = crate::tls::internal_client(&settings.internal_tls)?.unzip();
        let url = reqwest::Url::parse(base_url)
            .with_context(|| format!("the internal tier's URL {base_url:?} is not a URL"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => anyhow::bail!("the internal tier's URL must be http or https, not {other}"),
        };
        // The scheme decides, as it always has: the settings insist on
        // https:// wherever public.internal_tls is set (except `all` mode
        // over a plain loopback listener), and the internal tier is only
        // ever verified against the private CA, never the web PKI.
        let tls = match (https, tls) {
            (true, None) => anyhow::bail!(
                "the internal tier's URL {base_url} is https://, so public.internal_tls.ca_file \
                 must be set: the internal tier is verified against the private CA only"
            ),
            (true, tls) => tls,
            (false, _) => None,
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            anyhow::bail!("the internal tier's URL {base_url} must not have a path or query");
        }
        let host = url
            .host_str()
            .context("the internal tier's URL has no host")?
            // `[::1]` in a URL is `::1` to the resolver and to TLS.
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .context("the internal tier's URL has no port")?;
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let tls = match tls {
            Some(config) => {
                // Each connection says in its handshake which protocol it speaks.
                let with_alpn = |protocol: &[u8]| {
                    let mut config = config.clone();
                    config.alpn_protocols = vec![protocol.to_vec()];
                    tokio_rustls::TlsConnector::from(Arc::new(config))
                };
                Some(Tls {
                    h1: with_alpn(b"http/1.1"),
                    h2: with_alpn(b"h2"),
                    name: ServerName::try_from(host.clone())
                        .with_context(|| format!("{host:?} is not a TLS server name"))?,
                })
            }
            None => None,
        };
        let endpoint = Endpoint {
            host,
            port,
            tls,
            connect_timeout: Duration::from_millis(settings.internal_connect_timeout_ms),
            max_age: Duration::from_secs(settings.internal_connection_max_age_secs),
            h1_max_idle: settings.internal_pool_max_idle,
        };
        Ok(InternalClientConfig {
            shared: Arc::new(Shared {
                endpoint: Arc::new(endpoint),
                scheme: if https { Scheme::HTTPS } else { Scheme::HTTP },
                authority: authority
                    .parse()
                    .context("the internal tier's URL has no valid authority")?,
                host_header: HeaderValue::from_str(&authority)
                    .context("the internal tier's URL is not a valid Host header")?,
                http2: settings.internal_http2,
                timeout: Duration::from_millis(settings.internal_timeout_ms),
                batch_timeout: Duration::from_millis(settings.internal_timeout_ms),
            }),
            tls_reloader: tls_reloader.map(Arc::new),
        })
    }

    pub fn with_batch_timeout(mut self, timeout: Duration) -> Self {
        // Only called while building, before any worker holds a clone.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.batch_timeout = timeout;
        }
        self
    }

    pub fn tls_reloader(&self) -> Option<Arc<crate::tls::Reloader>> {
        self.tls_reloader.clone()
    }

    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// One worker's client. It must be used on the thread of the actix
    /// worker that built it (its connections are driven there).
    pub fn build(&self) -> InternalClient {
        let endpoint = self.shared.endpoint.clone();
        InternalClient {
            shared: self.shared.clone(),
            h1: Rc::new(H1Pool::new(endpoint.clone())),
            h2: H2Lanes::new(endpoint),
        }
    }
}

/// One actix worker's client (cheap to clone; clones share the connections).
#[derive(Clone)]
pub struct InternalClient {
    shared: Arc<Shared>,
    h1: Rc<H1Pool>,
    h2: Rc<H2Lanes>,
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
    /// An error of the exchange itself (after connecting).
    fn from_hyper(e: &hyper::Error) -> Self {
        if e.is_parse() || e.is_parse_status() {
            InternalError::BadResponse(error_chain(e))
        } else {
            InternalError::Unreachable(error_chain(e))
        }
    }
}

/// The connection failed under a request (reset, closed, a protocol
/// error), as opposed to an answer that could not be read.
fn broken(e: &hyper::Error) -> bool {
    !(e.is_parse() || e.is_parse_status() || e.is_user())
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
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn read(response: hyper::Response<hyper::body::Incoming>) -> Result<Self, InternalError> {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| InternalError::BadResponse(error_chain(&e)))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn parts(self) -> (StatusCode, Bytes) {
        (self.status, self.body)
    }
}

/// A path built from typed ids and numbers, so always valid.
fn path(path: String) -> PathAndQuery {
    PathAndQuery::try_from(path).unwrap_or_else(|_| PathAndQuery::from_static("/"))
}

/// A request on its way: built by the callers below, sent by `send`.
struct Call {
    request: Request<Full<Bytes>>,
    timeout: Duration,
    http2: bool,
}

impl InternalClient {
    /// A call without a body, on the configured protocol.
    fn request(&self, method: Method, path: PathAndQuery, trace: Option<&TraceToken>) -> Call {
        self.call(method, path, trace, Bytes::new(), self.shared.http2)
    }

    fn call(
        &self,
        method: Method,
        path: PathAndQuery,
        trace: Option<&TraceToken>,
        body: Bytes,
        http2: bool,
    ) -> Call {
        let shared = &self.shared;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        let mut uri = hyper::http::uri::Parts::default();
        if http2 {
            // HTTP/2 names the origin in the request (`:scheme`, `:authority`).
            uri.scheme = Some(shared.scheme.clone());
            uri.authority = Some(shared.authority.clone());
        } else {
            request
                .headers_mut()
                .insert(HOST, shared.host_header.clone());
        }
        uri.path_and_query = Some(path);
        *request.uri_mut() = Uri::from_parts(uri).unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(trace) = trace
            && let Ok(value) = HeaderValue::from_str(trace.as_str())
        {
            headers.insert(HeaderName::from_static(TRACE_HEADER), value);
        }
        Call {
            request,
            timeout: shared.timeout,
            http2,
        }
    }

    /// Sends with a client span (its `traceparent` goes along, so the
    /// internal tier's span joins the same trace) and a latency measurement.
    async fn send(&self, span: &str, call: Call) -> Result<Answer, InternalError> {
        self.send_or_again(span, call, || None).await
    }

    /// `send` for a GET, which changes nothing at the internal tier: when
    /// its connection breaks before the answer (the internal host died
    /// under it) it is sent once more, on another connection, within the
    /// same deadline. `build` makes the request again. Anything else that
    /// reached the wire is never sent twice: a create may have been stored.
    async fn send_read(
        &self,
        span: &str,
        build: impl Fn() -> Call,
    ) -> Result<Answer, InternalError> {
        self.send_or_again(span, build(), || Some(build())).await
    }

    async fn send_or_again(
        &self,
        span: &str,
        mut call: Call,
        again: impl FnOnce() -> Option<Call>,
    ) -> Result<Answer, InternalError> {
        let measured = DependencyCall::start(names::PEER_INTERNAL, || span.to_owned());
        measured.inject_headers(call.request.headers_mut());
        let again = || {
            again().map(|mut call| {
                measured.inject_headers(call.request.headers_mut());
                call.request
            })
        };
        let exchange = async {
            if call.http2 {
                self.exchange_h2(call.request, again).await
            } else {
                self.exchange_h1(call.request, again).await
            }
        };
        let result = tokio::time::timeout(call.timeout, exchange)
            .await
            .unwrap_or(Err(InternalError::Timeout));
        measured.finish(match &result {
            Ok(answer) if !answer.status.is_server_error() => names::OUTCOME_SUCCESS,
            Err(InternalError::Timeout) => names::OUTCOME_TIMEOUT,
            _ => names::OUTCOME_FAIL,
        });
        result
    }

    /// One request and its whole answer over HTTP/1.1, on a pooled
    /// connection or a new one. A pooled connection can turn out closed
    /// (the internal tier restarted, or closed it idle) before the request
    /// is written: hyper then hands the request back and it goes on the next
    /// connection. Once a request has been written it is sent again only
    /// when `again` makes it anew (a read) and its connection broke.
    async fn exchange_h1(
        &self,
        mut request: Request<Full<Bytes>>,
        again: impl FnOnce() -> Option<Request<Full<Bytes>>>,
    ) -> Result<Answer, InternalError> {
        let mut again = Some(again);
        loop {
            let mut conn = self.h1.checkout().await?;
            match conn.sender.try_send_request(request).await {
                Ok(response) => {
                    let answer = Answer::read(response).await?;
                    self.h1.checkin(conn);
                    return Ok(answer);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if conn.pooled => request = unsent,
                    _ => match broken(e.error()).then(|| again.take()?()).flatten() {
                        Some(anew) => request = anew,
                        None => return Err(InternalError::from_hyper(e.error())),
                    },
                },
            }
        }
    }

    /// The same over one of the worker's HTTP/2 connections, with the same
    /// rules: a request goes on another connection when hyper hands it
    /// back unsent (its connection had closed), or when it is a read whose
    /// connection broke under it.
    async fn exchange_h2(
        &self,
        mut request: Request<Full<Bytes>>,
        again: impl FnOnce() -> Option<Request<Full<Bytes>>>,
    ) -> Result<Answer, InternalError> {
        let mut again = Some(again);
        loop {
            let mut lease = self.h2.lease().await?;
            match lease.sender.try_send_request(request).await {
                Ok(response) => return Answer::read(response).await,
                Err(mut e) => match e.take_message() {
                    Some(unsent) if lease.pooled => {
                        self.h2.forget(&lease);
                        request = unsent;
                    }
                    _ => match broken(e.error()).then(|| again.take()?()).flatten() {
                        Some(anew) => {
                            self.h2.forget(&lease);
                            request = anew;
                        }
                        None => return Err(InternalError::from_hyper(e.error())),
                    },
                },
            }
        }
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
        let call = || self.request(Method::GET, path(format!("/api/cache/{id}")), trace);
        match self.send_read("GET /api/cache/{id}", call).await?.parts() {
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
        let mut call = self.call(
            Method::POST,
            PathAndQuery::from_static("/api/cache"),
            trace,
            document.into(),
            self.shared.http2,
        );
        call.request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self.send("POST /api/cache", call).await?.parts() {
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
        // Batches keep to HTTP/1.1 connections of their own (module docs).
        let mut call = self.call(
            Method::POST,
            PathAndQuery::from_static("/api/cache/batch"),
            trace,
            documents.into(),
            false,
        );
        call.timeout = self.shared.batch_timeout;
        let headers = call.request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((key, fingerprint)) = idempotency {
            // Both were checked to be printable ASCII by IdempotencyKey.
            if let (Ok(key), Ok(fingerprint)) = (
                HeaderValue::from_str(key),
                HeaderValue::from_str(fingerprint),
            ) {
                headers.insert(HeaderName::from_static("idempotency-key"), key);
                headers.insert(
                    HeaderName::from_static("idempotency-fingerprint"),
                    fingerprint,
                );
            }
        }
        let Answer {
            status,
            headers,
            body,
        } = self.send("POST /api/cache/batch", call).await?;
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
        let call = || {
            let query = match after {
                Some(after) => format!("/api/cache?limit={limit}&after={after}"),
                None => format!("/api/cache?limit={limit}"),
            };
            self.request(Method::GET, path(query), trace)
        };
        match self.send_read("GET /api/cache", call).await?.parts() {
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
        let call = self.request(Method::DELETE, path(format!("/api/cache/{id}")), trace);
        match self.send("DELETE /api/cache/{id}", call).await?.parts() {
            (StatusCode::NO_CONTENT, _) => Ok(true),
            (StatusCode::NOT_FOUND, _) => Ok(false),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Whether the internal tier's process answers (its liveness route).
    pub async fn live(&self) -> Result<(), InternalError> {
        let call = || {
            self.request(
                Method::GET,
                PathAndQuery::from_static("/api/health/live"),
                None,
            )
        };
        match self.send_read("GET /api/health/live", call).await?.parts() {
            (StatusCode::OK, _) => Ok(()),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }
}
