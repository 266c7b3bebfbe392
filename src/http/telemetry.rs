//! The HTTP server side of telemetry: an actix middleware that gives each
//! request a server span, measures `http.server.request.duration` and
//! writes the access log line (`log.access`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, Uri};
use actix_web::middleware::Next;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, StringValue};

use crate::telemetry::names::*;
use crate::telemetry::otel::instruments;
use crate::telemetry::otel::sampling::{self, SampledNewTrace};
use crate::telemetry::otel::spans::{CallerTrace, start_span};
use crate::telemetry::trace_context;

/// Actix middleware (`middleware::from_fn`) of the public tier: a server
/// span per request, child of an incoming `traceparent` or the root of a
/// new trace (sampled at `otlp.trace_sample_ratio`), and
/// `http.server.request.duration` labelled with the route pattern (never
/// the raw path, which would make one time series per customer id).
///
/// The route is read from the routed request once the response is there:
/// actix then follows the matched resource directly, while asking before
/// routing walks the whole route table (and its regexes) a second time.
pub async fn request_telemetry(
    access: AccessLog,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    telemetry(req, next, Roots::Start, access).await
}

/// The internal tier's twin of `request_telemetry`. It never starts a
/// trace: its callers are public tiers, which decide for the whole trace
/// and send `traceparent` only when there is one to follow (see
/// `DependencyCall::inject_headers`). A request without one gets no span;
/// its metrics are recorded all the same.
pub async fn follower_telemetry(
    access: AccessLog,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    telemetry(req, next, Roots::Follow, access).await
}

/// Whether the tier writes one INFO line per request (`log.access`),
/// target `cinemo::access`: the tier, method, path (without the query),
/// status, duration in ms, the `X-Trace` token when there is one, and the
/// TCP peer (the load balancer, in production).
#[derive(Clone, Copy, Debug)]
pub struct AccessLog {
    pub on: bool,
    pub tier: &'static str,
}

/// What the line needs from the request, taken before the request goes
/// down the chain: routing rewrites the path and method (`HEAD` becomes
/// `GET`, see `crate::http::guards`), and an error answer comes back
/// without the request. Cheap: the method, and reference counts on the
/// request's own bytes.
struct Access {
    tier: &'static str,
    method: Method,
    uri: Uri,
    trace: Option<HeaderValue>,
    peer: Option<std::net::SocketAddr>,
}

impl Access {
    fn take(on: AccessLog, req: &ServiceRequest) -> Option<Access> {
        if !on.on || !tracing::enabled!(target: LOG_ACCESS_TARGET, tracing::Level::INFO) {
            return None;
        }
        Some(Access {
            tier: on.tier,
            method: req.method().clone(),
            uri: req.uri().clone(),
            trace: req.headers().get(TRACE_HEADER).cloned(),
            peer: req.peer_addr(),
        })
    }

    fn write(self, status: u16, elapsed: std::time::Duration) {
        // Header values are visible ASCII or not shown at all.
        let trace = self
            .trace
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|t| &t[..t.len().min(crate::domain::TraceToken::MAX_LEN)]);
        tracing::info!(
            target: LOG_ACCESS_TARGET,
            tier = self.tier,
            method = self.method.as_str(),
            path = self.uri.path(),
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            trace,
            peer = self.peer.map(tracing::field::display),
            "{LOG_ACCESS}"
        );
    }
}

/// Whether a tier starts traces of its own for requests without a
/// `traceparent`.
#[derive(Clone, Copy, PartialEq)]
enum Roots {
    Start,
    Follow,
}

async fn telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    roots: Roots,
    access: AccessLog,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let access = Access::take(access, &req);
    let instruments = instruments::metrics();
    let (method, standard_method) = method_name(req.method());
    // W3C trace context, read directly (`crate::telemetry::trace_context`): the global
    // propagator sits behind a lock, and the SDK's parser allocates.
    let parent = match trace_context::extract(req.headers()) {
        Some(remote) => Some(
            Context::current()
                .with_remote_span_context(remote)
                .with_value(CallerTrace),
        ),
        // Without a `traceparent` the internal tier has nothing to follow:
        // no span, no sampling decision, no ids. The public tier starts a
        // trace, and builds its span, only when the trace is sampled: an
        // unsampled trace it started would not be recorded here nor sent on
        // (`DependencyCall::inject_headers`).
        None => (roots == Roots::Start && sampling::sample_new_trace())
            .then(|| Context::current().with_value(SampledNewTrace)),
    };
    let cx = parent.map(|parent| {
        start_span(&parent, SpanKind::Server, |span| {
            let mut attributes = vec![KeyValue::new(ATTR_HTTP_METHOD, method.clone())];
            if let Some(token) = req
                .headers()
                .get(TRACE_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                let token: String = token
                    .chars()
                    .take(crate::domain::TraceToken::MAX_LEN)
                    .collect();
                attributes.push(KeyValue::new(SPAN_ATTR_X_TRACE, token));
            }
            span.set_attributes(attributes);
        })
    });

    let result = match &cx {
        Some(cx) => next.call(req).with_context(cx.clone()).await,
        None => next.call(req).await,
    };

    let (status, route) = match &result {
        Ok(res) => (res.status().as_u16(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code().as_u16(), None),
    };
    if let Some(cx) = &cx {
        let span = cx.span();
        if span.is_recording() {
            span.update_name(match &route {
                Some(route) => format!("{method} {route}"),
                None => method.to_string(),
            });
            if let Some(route) = &route {
                span.set_attribute(KeyValue::new(ATTR_HTTP_ROUTE, route.clone()));
            }
            span.set_attribute(KeyValue::new(ATTR_HTTP_STATUS, i64::from(status)));
            if status >= 500 {
                span.set_status(Status::error(format!("HTTP {status}")));
            }
        }
        span.end();
    }
    let elapsed = start.elapsed();
    if let Some(access) = access {
        access.write(status, elapsed);
    }
    instruments.record_http(
        elapsed.as_secs_f64(),
        &method,
        standard_method,
        status,
        route,
    );
    result
}

/// The method as an attribute value, and its `'static` name for the
/// standard methods (no allocation; the key of the per-thread bound
/// histograms). Other methods keep their own spelling and no static name.
fn method_name(method: &actix_web::http::Method) -> (StringValue, Option<&'static str>) {
    use actix_web::http::Method;
    let name = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => return (method.as_str().to_owned().into(), None),
    };
    (name.into(), Some(name))
}
