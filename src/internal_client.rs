//! The public tier's client for the internal tier: pooled keep-alive
//! connections, a connect timeout, a whole-request deadline, and no retries
//! of a request that reached the wire (a create is not idempotent, so it is
//! never sent twice).
//!
//! Built on hyper's connection-level HTTP/1.1 API rather than a
//! general-purpose client: every call goes to one fixed origin, so the URL
//! parsing, redirect and retry layers, shared pool lock and connector a
//! general client runs per request were a third of the public tier's own
//! CPU on a read (docs/performance.md). Each actix worker has its own
//! client and pool; a connection is driven by a task on that worker's
//! thread, so no request crosses threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Deserialize;

use crate::domain::{DocId, TraceToken};
use crate::settings::PublicSettings;
use crate::telemetry::names::{self, TRACE_HEADER};
use crate::telemetry::otel::DependencyCall;

/// A pooled connection unused for this long is closed rather than reused:
/// below the internal tier's keep-alive (`http.keep_alive_secs`, 75 s), so
/// the client, not the server, ends idle connections and a request never
/// races the server's close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

const USER_AGENT_VALUE: &str = concat!("cinemo-public/", env!("CARGO_PKG_VERSION"));

/// Everything needed to build a client; built once per actix worker so each
/// worker's connections stay on its own thread.
#[derive(Clone)]
pub struct InternalClientConfig {
    shared: Arc<Shared>,
    /// Swaps the certificate and CA inside `tls` (every worker's client shares them).
    tls_reloader: Option<Arc<crate::tls::Reloader>>,
}

/// What every worker's client shares.
struct Shared {
    /// `host:port` to connect to.
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: HeaderValue,
    /// Mutual TLS to the internal tier (only the private CA is trusted);
    /// None: plain HTTP, allowed only where the settings allow it.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    timeout: Duration,
    /// Batch calls carry up to `batch.max_items` documents: their own deadline.
    batch_timeout: Duration,
    pool_max_idle: usize,
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
            Some(mut config) => {
                // This client speaks HTTP/1.1 only; say so in the handshake.
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = ServerName::try_from(host.clone())
                    .with_context(|| format!("{host:?} is not a TLS server name"))?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
            None => None,
        };
        Ok(InternalClientConfig {
            shared: Arc::new(Shared {
                host,
                port,
                authority: HeaderValue::from_str(&authority)
                    .context("the internal tier's URL is not a valid Host header")?,
                tls,
                connect_timeout: Duration::from_millis(settings.internal_connect_timeout_ms),
                timeout: Duration::from_millis(settings.internal_timeout_ms),
                batch_timeout: Duration::from_millis(settings.internal_timeout_ms),
                pool_max_idle: settings.internal_pool_max_idle,
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
        InternalClient {
            shared: self.shared.clone(),
            idle: Rc::new(RefCell::new(Vec::new())),
        }
    }
}

/// One actix worker's client (cheap to clone; clones share the pool).
#[derive(Clone)]
pub struct InternalClient {
    shared: Arc<Shared>,
    /// Idle keep-alive connections, most recently used last.
    idle: Rc<RefCell<Vec<Idle>>>,
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
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
    fn parts(self) -> (StatusCode, Bytes) {
        (self.status, self.body)
    }
}

/// A request on its way: built by the callers below, sent by `send`.
struct Call {
    request: Request<Full<Bytes>>,
    timeout: Duration,
}

impl InternalClient {
    fn request(&self, method: Method, path: &str, trace: Option<&TraceToken>) -> Call {
        self.request_with_body(method, path, trace, Bytes::new())
    }

    fn request_with_body(
        &self,
        method: Method,
        path: &str,
        trace: Option<&TraceToken>,
        body: impl Into<Bytes>,
    ) -> Call {
        let mut request = Request::new(Full::new(body.into()));
        *request.method_mut() = method;
        // Every path below is built from typed ids and numbers.
        *request.uri_mut() = path.parse().unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert(HOST, self.shared.authority.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(trace) = trace
            && let Ok(value) = HeaderValue::from_str(trace.as_str())
        {
            headers.insert(HeaderName::from_static(TRACE_HEADER), value);
        }
        Call {
            request,
            timeout: self.shared.timeout,
        }
    }

    /// Sends with a client span (its `traceparent` goes along, so the
    /// internal tier's span joins the same trace) and a latency measurement.
    async fn send(&self, span: &str, mut call: Call) -> Result<Answer, InternalError> {
        let measured = DependencyCall::start(names::PEER_INTERNAL, || span.to_owned());
        measured.inject_headers(call.request.headers_mut());
        let result = tokio::time::timeout(call.timeout, self.exchange(call.request))
            .await
            .unwrap_or(Err(InternalError::Timeout));
        measured.finish(match &result {
            Ok(answer) if !answer.status.is_server_error() => names::OUTCOME_SUCCESS,
            Err(InternalError::Timeout) => names::OUTCOME_TIMEOUT,
            _ => names::OUTCOME_FAIL,
        });
        result
    }

    /// One request and its whole answer, on a pooled connection or a new
    /// one. A pooled connection can turn out closed (the internal tier
    /// restarted, or closed it idle) before the request is written: hyper
    /// then hands the request back and it goes on the next connection. Once
    /// a request has been written it is never sent again.
    async fn exchange(&self, mut request: Request<Full<Bytes>>) -> Result<Answer, InternalError> {
        loop {
            let (mut sender, pooled) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| InternalError::BadResponse(error_chain(&e)))?
                        .to_bytes();
                    self.checkin(sender);
                    return Ok(Answer {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(InternalError::from_hyper(e.error())),
                },
            }
        }
    }

    /// The most recently used live connection, waiting (briefly) for it to
    /// finish its previous exchange; None when the pool has none left.
    async fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let Idle { mut sender, since } = self.idle.borrow_mut().pop()?;
            if sender.is_closed() || since.elapsed() >= POOL_IDLE_TIMEOUT {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.shared.pool_max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// A new connection (TCP, then TLS when configured, then the HTTP/1.1
    /// handshake) within the connect timeout. A connect that times out is a
    /// timeout (504), like a request that does; a refused one is not.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, InternalError> {
        let shared = &self.shared;
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect((shared.host.as_str(), shared.port))
                .await
                .map_err(|e| {
                    InternalError::Unreachable(format!(
                        "connecting to {}:{}: {e}",
                        shared.host, shared.port
                    ))
                })?;
            // Requests go out whole in one write; Nagle would only delay them.
            let _ = tcp.set_nodelay(true);
            match &shared.tls {
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                        InternalError::Unreachable(format!("TLS handshake: {}", error_chain(&e)))
                    })?;
                    handshake(tls).await
                }
                None => handshake(tcp).await,
            }
        };
        tokio::time::timeout(shared.connect_timeout, connecting)
            .await
            .unwrap_or(Err(InternalError::Timeout))
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
        let call = self.request(Method::GET, &format!("/api/cache/{id}"), trace);
        match self.send("GET /api/cache/{id}", call).await?.parts() {
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
        let mut call = self.request_with_body(Method::POST, "/api/cache", trace, document);
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
        let mut call = self.request_with_body(Method::POST, "/api/cache/batch", trace, documents);
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
        let path = match after {
            Some(after) => format!("/api/cache?limit={limit}&after={after}"),
            None => format!("/api/cache?limit={limit}"),
        };
        let call = self.request(Method::GET, &path, trace);
        match self.send("GET /api/cache", call).await?.parts() {
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
        let call = self.request(Method::DELETE, &format!("/api/cache/{id}"), trace);
        match self.send("DELETE /api/cache/{id}", call).await?.parts() {
            (StatusCode::NO_CONTENT, _) => Ok(true),
            (StatusCode::NOT_FOUND, _) => Ok(false),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }

    /// Whether the internal tier's process answers (its liveness route).
    pub async fn live(&self) -> Result<(), InternalError> {
        let call = self.request(Method::GET, "/api/health/live", None);
        match self.send("GET /api/health/live", call).await?.parts() {
            (StatusCode::OK, _) => Ok(()),
            (status, body) => Err(Self::unexpected(status, &body)),
        }
    }
}

/// The HTTP/1.1 handshake on a connected stream; the connection is driven
/// by a task on the current (actix worker) thread until either side closes
/// it.
async fn handshake<IO>(io: IO) -> Result<SendRequest<Full<Bytes>>, InternalError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| InternalError::Unreachable(error_chain(&e)))?;
    actix_web::rt::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error_chain(&e), "connection to the internal tier ended");
        }
    });
    Ok(sender)
}
