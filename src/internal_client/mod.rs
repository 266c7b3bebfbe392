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
//!
//! Paths, headers and the meaning of each answer are the internal API's
//! (`crate::internal_api`); an answer is decoded once, into a value or an
//! `InternalError`.

mod config;
mod error;
mod pool;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, StatusCode, Uri};

use crate::domain::{DocId, TraceToken};
use crate::internal_api::{self as api, Failure};
use crate::telemetry::names;
use crate::telemetry::otel::DependencyCall;
pub use config::InternalClientConfig;
use config::Shared;
pub use error::InternalError;
use error::{broken, error_chain};
use pool::{H1Pool, H2Lanes};

const USER_AGENT_VALUE: &str = concat!("cinemo-public/", env!("CARGO_PKG_VERSION"));

/// One actix worker's client (cheap to clone; clones share the connections).
#[derive(Clone)]
pub struct InternalClient {
    shared: Arc<Shared>,
    h1: Rc<H1Pool>,
    h2: Rc<H2Lanes>,
}

impl InternalClientConfig {
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

    /// The answer when it is the call's success (`expected`), else what it
    /// means.
    fn expect(self, expected: StatusCode) -> Result<Self, InternalError> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(InternalError::from_answer(self.status, &self.body))
        }
    }
}

/// A request on its way: built by the callers below, sent by `send`.
struct Call {
    request: Request<Full<Bytes>>,
    timeout: Duration,
    http2: bool,
    /// The route, for the client span's name (`GET /api/cache/{id}`).
    route: &'static str,
}

impl InternalClient {
    /// A call without a body, on the configured protocol.
    fn request(
        &self,
        method: Method,
        route: &'static str,
        path: String,
        trace: Option<&TraceToken>,
    ) -> Result<Call, InternalError> {
        self.call(method, route, path, trace, Bytes::new(), self.shared.http2)
    }

    fn call(
        &self,
        method: Method,
        route: &'static str,
        path: String,
        trace: Option<&TraceToken>,
        body: Bytes,
        http2: bool,
    ) -> Result<Call, InternalError> {
        let shared = &self.shared;
        let path = PathAndQuery::try_from(path)
            .map_err(|e| InternalError::Request(format!("{route}: {e}")))?;
        let mut uri = hyper::http::uri::Parts::default();
        let mut request = Request::new(Full::new(body));
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
        *request.uri_mut() =
            Uri::from_parts(uri).map_err(|e| InternalError::Request(format!("{route}: {e}")))?;
        *request.method_mut() = method;
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(trace) = trace {
            // A TraceToken is printable ASCII, always a valid header value.
            let value = HeaderValue::from_str(trace.as_str())
                .map_err(|e| InternalError::Request(format!("X-Trace: {e}")))?;
            headers.insert(HeaderName::from_static(api::TRACE_HEADER), value);
        }
        Ok(Call {
            request,
            timeout: shared.timeout,
            http2,
            route,
        })
    }

    /// Sends with a client span (its `traceparent` goes along, so the
    /// internal tier's span joins the same trace) and a latency measurement.
    async fn send(&self, call: Call) -> Result<Answer, InternalError> {
        self.send_or_again(call, || None).await
    }

    /// `send` for a GET, which changes nothing at the internal tier: when
    /// its connection breaks before the answer (the internal host died
    /// under it) it is sent once more, on another connection, within the
    /// same deadline. `build` makes the request again. Anything else that
    /// reached the wire is never sent twice: a create may have been stored.
    async fn send_read(
        &self,
        build: impl Fn() -> Result<Call, InternalError>,
    ) -> Result<Answer, InternalError> {
        let call = build()?;
        self.send_or_again(call, || build().ok()).await
    }

    async fn send_or_again(
        &self,
        mut call: Call,
        again: impl FnOnce() -> Option<Call>,
    ) -> Result<Answer, InternalError> {
        let method = call.request.method().clone();
        let route = call.route;
        let measured = DependencyCall::start(names::PEER_INTERNAL, || format!("{method} {route}"));
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

    /// The stored document as JSON bytes (`_id` first), or None when there
    /// is none.
    pub async fn get_cache(
        &self,
        id: &DocId,
        trace: Option<&TraceToken>,
    ) -> Result<Option<Bytes>, InternalError> {
        let call = || self.request(Method::GET, api::CACHE_ITEM, api::cache_item(id), trace);
        match self.send_read(call).await?.expect(StatusCode::OK) {
            Ok(answer) => Ok(Some(answer.body)),
            Err(InternalError::Refused(Failure::NotFound)) => Ok(None),
            Err(e) => Err(e),
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
            api::CACHE,
            api::CACHE.to_owned(),
            trace,
            document.into(),
            self.shared.http2,
        )?;
        call.request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(api::JSON_REQUEST));
        let answer = self.send(call).await?.expect(StatusCode::OK)?;
        let created: api::Created = serde_json::from_slice(&answer.body)
            .map_err(|e| InternalError::BadResponse(e.to_string()))?;
        parse_id(&created.id)
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
            api::CACHE_BATCH,
            api::CACHE_BATCH.to_owned(),
            trace,
            documents.into(),
            false,
        )?;
        call.timeout = self.shared.batch_timeout;
        let headers = call.request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(api::JSON_REQUEST));
        if let Some((key, fingerprint)) = idempotency {
            // Both were checked to be printable ASCII by IdempotencyKey.
            let value = |v: &str| {
                HeaderValue::from_str(v)
                    .map_err(|e| InternalError::Request(format!("idempotency header: {e}")))
            };
            headers.insert(HeaderName::from_static(api::IDEMPOTENCY_KEY), value(key)?);
            headers.insert(
                HeaderName::from_static(api::IDEMPOTENCY_FINGERPRINT),
                value(fingerprint)?,
            );
        }
        let answer = self.send(call).await?.expect(StatusCode::OK)?;
        let replayed = answer.headers.contains_key(api::IDEMPOTENT_REPLAYED);
        let created: api::BatchCreated = serde_json::from_slice(&answer.body)
            .map_err(|e| InternalError::BadResponse(e.to_string()))?;
        let ids = created
            .ids
            .iter()
            .map(|id| parse_id(id))
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
            self.request(
                Method::GET,
                api::CACHE,
                api::cache_page(limit, after),
                trace,
            )
        };
        Ok(self.send_read(call).await?.expect(StatusCode::OK)?.body)
    }

    /// Deletes a document; false when there was none.
    pub async fn delete(
        &self,
        id: &DocId,
        trace: Option<&TraceToken>,
    ) -> Result<bool, InternalError> {
        let call = self.request(Method::DELETE, api::CACHE_ITEM, api::cache_item(id), trace)?;
        match self.send(call).await?.expect(StatusCode::NO_CONTENT) {
            Ok(_) => Ok(true),
            Err(InternalError::Refused(Failure::NotFound)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the internal tier's process answers (its liveness route).
    pub async fn live(&self) -> Result<(), InternalError> {
        let call = || self.request(Method::GET, api::LIVE, api::LIVE.to_owned(), None);
        self.send_read(call)
            .await?
            .expect(StatusCode::OK)
            .map(|_| ())
    }
}

fn parse_id(id: &str) -> Result<DocId, InternalError> {
    DocId::parse(id).ok_or_else(|| InternalError::BadResponse(format!("malformed id {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::PublicSettings;

    fn client() -> InternalClient {
        InternalClientConfig::new(
            &PublicSettings::default().listening_on("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8081",
            Duration::from_secs(1),
        )
        .expect("a valid URL")
        .build()
    }

    #[test]
    fn a_path_that_is_no_request_target_is_an_error_not_a_request_to_slash() {
        let e = client()
            .request(Method::GET, api::CACHE_ITEM, "/api/cache/a b".into(), None)
            .err()
            .expect("refused");
        assert!(
            matches!(&e, InternalError::Request(why) if why.contains(api::CACHE_ITEM)),
            "{e}"
        );
    }

    #[test]
    fn a_call_names_its_target_and_origin() {
        let call = client()
            .request(Method::GET, api::LIVE, api::LIVE.to_owned(), None)
            .expect("built");
        // HTTP/2 by default: the origin is in the request target.
        assert_eq!(call.request.uri(), "http://127.0.0.1:8081/api/health/live");
        assert!(call.http2);
    }
}
