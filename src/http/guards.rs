//! What both tiers do to a request before routing: a bound on the request
//! target (414) and a deadline for reading the body (408), so a client
//! that trickles its body cannot hold a worker's connection forever
//! (actix's `client_request_timeout` covers only the request head); and
//! the old services' Express routing rules (`express_routing`).

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use futures_util::StreamExt;

use super::response::text;
use crate::settings::HttpSettings;

#[derive(Clone, Copy, Debug)]
pub struct Guards {
    max_uri_bytes: usize,
    body_timeout: Duration,
}

impl Guards {
    pub fn new(http: &HttpSettings) -> Self {
        Guards {
            max_uri_bytes: http.max_uri_bytes,
            body_timeout: Duration::from_millis(http.request_body_timeout_ms),
        }
    }
}

/// Whether a handler may read this request's body. Over HTTP/1.1 a
/// request without a body has no payload at all; over HTTP/2 every request
/// has a stream, so a GET or DELETE that declares no body (the methods no
/// route reads a body for; a HEAD is a GET by now, see `express_routing`)
/// is let through unguarded instead of paying for a deadline nobody waits
/// on.
fn reads_body(req: &ServiceRequest) -> bool {
    use actix_web::http::Method;
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let bodiless = matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE);
    let declared =
        req.headers().contains_key(CONTENT_LENGTH) || req.headers().contains_key(TRANSFER_ENCODING);
    !bodiless || declared
}

/// Routes the way the old services' Express did by default, so old
/// clients keep working: paths match case-insensitively, one trailing
/// slash is ignored (`/api/health/`), and `HEAD` is answered by the `GET`
/// route (the HTTP layer remembers the request was `HEAD` and sends no
/// body). Done by rewriting what the router sees; a request that needs
/// none of it costs a scan of its path. Ids are hex and parsed
/// case-insensitively, so lowercasing the path changes no answer.
///
/// `head_mut` and `match_info_mut` panic when the request has been cloned
/// (the request head is then shared), so no middleware outside `check`
/// may keep a copy of the `HttpRequest` while it runs: the telemetry and
/// rate-limit middlewares wrapped around it (src/startup/public_tier.rs,
/// src/startup/internal_tier.rs) only read it. A new outer middleware must
/// do the same, or go inside `check`.
fn express_routing(req: &mut ServiceRequest) {
    use actix_web::http::Method;
    use actix_web::http::uri::{PathAndQuery, Uri};
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let path = req.path();
    let slash = path.len() > 1 && path.ends_with('/');
    if !slash && !path.bytes().any(|b| b.is_ascii_uppercase()) {
        return;
    }
    let mut routed = path.to_ascii_lowercase();
    if slash {
        routed.pop();
    }
    let query = req.query_string();
    if !query.is_empty() {
        routed.push('?');
        routed.push_str(query);
    }
    let mut parts = req.uri().clone().into_parts();
    let Ok(path_and_query) = PathAndQuery::from_maybe_shared(routed) else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// The middleware, with the tier's limits:
/// `.wrap(from_fn(move |req, next| guards::check(guards, req, next)))`.
pub async fn check(
    this: Guards,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    {
        let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if target_len > this.max_uri_bytes {
            return Ok(req.into_response(text(StatusCode::URI_TOO_LONG, "URI too long")));
        }
        express_routing(&mut req);

        let payload = req.take_payload();
        if matches!(payload, Payload::None) || !reads_body(&req) {
            // No body to wait for: nothing to guard.
            req.set_payload(payload);
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        let timed_out = Rc::new(Cell::new(false));
        let flag = timed_out.clone();
        let deadline = tokio::time::Instant::now() + this.body_timeout;
        let guarded = futures_util::stream::unfold(Some(payload), move |state| {
            let flag = flag.clone();
            async move {
                let mut payload = state?;
                match tokio::time::timeout_at(deadline, payload.next()).await {
                    Ok(Some(chunk)) => Some((chunk, Some(payload))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.set(true);
                        let e = io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request body not received in time",
                        );
                        Some((Err(PayloadError::Io(e)), None))
                    }
                }
            }
        });
        req.set_payload(Payload::from(
            Box::pin(guarded) as actix_http::BoxedPayloadStream
        ));

        let response = next.call(req).await?.map_into_boxed_body();
        if timed_out.get() {
            tracing::info!("request body not received in time; closing the connection");
            let (req, _) = response.into_parts();
            return Ok(ServiceResponse::new(
                req,
                text(StatusCode::REQUEST_TIMEOUT, "request body timed out"),
            ));
        }
        Ok(response)
    }
}
