//! OpenTelemetry: metrics and traces over OTLP/HTTP (protobuf) to the
//! collector sidecar. Export runs on the SDK's own background threads with
//! timeouts, so a missing collector costs requests nothing: the request path
//! only records into in-memory aggregations and span queues.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::names::*;
use crate::build_info;
use crate::settings::Settings;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use opentelemetry::context::FutureExt;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram};
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, TraceId, Tracer};
use opentelemetry::{Context, KeyValue, StringValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingResult, SdkTracerProvider,
    ShouldSample,
};

/// Keeps the providers so shutdown can flush them.
pub struct OtelGuard {
    meters: SdkMeterProvider,
    tracer: SdkTracerProvider,
}

/// Installs the global propagator always (so `traceparent` is honoured and
/// forwarded even with export off) and, when `otlp.enabled`, the exporting
/// meter and tracer providers. Must run before the first `metrics()` call.
///
/// The SDK starts its export threads (batch span processor, periodic metric
/// reader, the HTTP client's runtime) while the providers are built, and a
/// new thread starts with its creator's nice value and scheduling policy:
/// building them on a thread at export priority puts all of them there
/// (`super::lower_thread_priority`).
pub fn init(settings: &Settings) -> anyhow::Result<Option<OtelGuard>> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("otel-init".into())
            .spawn_scoped(scope, || {
                super::lower_thread_priority();
                init_providers(settings)
            })?
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("OpenTelemetry set-up panicked")))
    })
}

fn init_providers(settings: &Settings) -> anyhow::Result<Option<OtelGuard>> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    if !settings.otlp.enabled {
        return Ok(None);
    }
    let base = settings.otlp.endpoint.trim_end_matches('/');
    let timeout = Duration::from_millis(settings.otlp.timeout_ms.max(1));
    let interval = Duration::from_millis(settings.otlp.export_interval_ms.max(1));
    let resource = resource(settings);

    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/metrics"))
        .with_timeout(timeout)
        // Deltas: the collector's awsemf exporter turns them into
        // CloudWatch sums without keeping per-process state.
        .with_temporality(Temporality::Delta)
        .build()?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter)
        .with_interval(interval)
        .build();
    let meters = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource.clone())
        .build();

    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_timeout(timeout)
        .build()?;
    // A bounded queue: when the collector is gone, spans beyond it are
    // dropped by the SDK instead of growing memory.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(8192)
        .with_scheduled_delay(interval.min(Duration::from_secs(5)))
        .build();
    let processor = BatchSpanProcessor::builder(span_exporter)
        .with_batch_config(batch)
        .build();
    // Parent-based: the internal tier follows the public tier's decision
    // (carried in `traceparent`), so a trace is whole or absent. The public
    // tier decides for a new trace before it builds a span (`RootSampler`).
    let ratio = settings.otlp.trace_sample_ratio;
    ROOT_SAMPLE_RATIO.store(ratio.to_bits(), Ordering::Relaxed);
    let sampler = Sampler::ParentBased(Box::new(RootSampler { ratio }));
    let tracer = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(processor)
        .with_resource(resource)
        .build();

    global::set_meter_provider(meters.clone());
    global::set_tracer_provider(tracer.clone());
    tracing::info!(endpoint = base, "OpenTelemetry export on");
    Ok(Some(OtelGuard { meters, tracer }))
}

fn resource(settings: &Settings) -> Resource {
    let environment = std::env::var("CINEMO_ENV").ok().filter(|e| !e.is_empty());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    // cinemo-bootstrap puts the EC2 instance id in the environment; asking
    // the metadata service here would slow every start off EC2.
    let instance = std::env::var("CINEMO_INSTANCE_ID")
        .ok()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| host.clone());
    Resource::builder_empty()
        .with_service_name("cinemo")
        .with_attributes([
            KeyValue::new("service.version", build_info::VERSION),
            KeyValue::new(RESOURCE_MODE, settings.mode.as_str()),
            KeyValue::new(
                "deployment.environment",
                environment.unwrap_or_else(|| "dev".into()),
            ),
            KeyValue::new("host.name", host),
            KeyValue::new("service.instance.id", instance),
        ])
        .build()
}

/// `otlp.trace_sample_ratio` while export is on (the bits of an `f64`);
/// zero, "never", while it is off.
static ROOT_SAMPLE_RATIO: AtomicU64 = AtomicU64::new(0);

/// Whether a new trace started by this tier is to be sampled: decided
/// before any span exists, so that the requests that are not (nine in ten
/// at the default ratio) build no span, context or trace id at all. That
/// took what OpenTelemetry costs a read in the public tier's own code from
/// about 5,300 to 3,100 instructions (docs/performance.md).
fn sample_new_trace() -> bool {
    let ratio = f64::from_bits(ROOT_SAMPLE_RATIO.load(Ordering::Relaxed));
    ratio >= 1.0 || (ratio > 0.0 && rand::random::<f64>() < ratio)
}

/// Marks the context a request's new trace starts from when
/// `sample_new_trace` kept it, so that the SDK's sampler agrees instead of
/// drawing again (which would sample at the square of the ratio).
#[derive(Clone, Copy)]
struct SampledNewTrace;

/// The root sampler under `ParentBased`: a span marked `SampledNewTrace` is
/// sampled; any other root span (none is started today) gets the ratio.
#[derive(Debug, Clone)]
struct RootSampler {
    ratio: f64,
}

impl ShouldSample for RootSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let sampler = if parent_context.is_some_and(|cx| cx.get::<SampledNewTrace>().is_some()) {
            Sampler::AlwaysOn
        } else {
            Sampler::TraceIdRatioBased(self.ratio)
        };
        sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

impl OtelGuard {
    /// Flushes and stops both providers, waiting at most `deadline`. The SDK
    /// calls block, so they run on their own thread.
    pub fn shutdown(self, deadline: Duration) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = self.tracer.shutdown_with_timeout(deadline);
                let _ = self.meters.shutdown_with_timeout(deadline);
                let _ = done_tx.send(());
            });
        if spawned.is_ok() && done_rx.recv_timeout(deadline).is_err() {
            tracing::warn!("OpenTelemetry flush did not finish before the shutdown deadline");
        }
    }
}

/// The instruments, created once from the global meter. Every attribute
/// set known in advance is bound once (`experimental_metrics_bound_instruments`):
/// a bound measurement is a direct write, where an unbound one filters,
/// hashes and looks up its attributes under a lock, which was most of what
/// metrics cost a request.
pub struct Instruments {
    tracer: BoxedTracer,
    /// `cinemo.customer.create` / `.read` by outcome (attempt, success, fail).
    customer_create: [BoundCounter<u64>; 3],
    customer_read: [BoundCounter<u64>; 3],
    http_duration: Histogram<f64>,
    /// `cinemo.dependency.duration` by peer (internal, storage) and outcome
    /// (success, fail, timeout).
    dependency_duration: [[BoundHistogram<f64>; 3]; 2],
    kinesis_errors: Counter<u64>,
}

/// Latency buckets in seconds: 1 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const BUSINESS_OUTCOMES: [&str; 3] = [OUTCOME_ATTEMPT, OUTCOME_SUCCESS, OUTCOME_FAIL];
const DEPENDENCY_PEERS: [&str; 2] = [PEER_INTERNAL, PEER_STORAGE];
const DEPENDENCY_OUTCOMES: [&str; 3] = [OUTCOME_SUCCESS, OUTCOME_FAIL, OUTCOME_TIMEOUT];

pub fn metrics() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = global::meter(METER_NAME);
        let histogram = |name: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let by_outcome = |counter: Counter<u64>| {
            BUSINESS_OUTCOMES.map(|outcome| counter.bind(&[KeyValue::new(ATTR_OUTCOME, outcome)]))
        };
        let dependency = histogram(METRIC_DEPENDENCY_DURATION);
        Instruments {
            tracer: global::tracer(METER_NAME),
            customer_create: by_outcome(meter.u64_counter(METRIC_CUSTOMER_CREATE).build()),
            customer_read: by_outcome(meter.u64_counter(METRIC_CUSTOMER_READ).build()),
            http_duration: histogram(METRIC_HTTP_SERVER_DURATION),
            dependency_duration: DEPENDENCY_PEERS.map(|peer| {
                DEPENDENCY_OUTCOMES.map(|outcome| {
                    dependency.bind(&[
                        KeyValue::new(ATTR_PEER, peer),
                        KeyValue::new(ATTR_OUTCOME, outcome),
                    ])
                })
            }),
            kinesis_errors: meter.u64_counter(METRIC_KINESIS_ERRORS).build(),
        }
    })
}

impl Instruments {
    /// The OpenTelemetry twin of one contract counter event.
    pub fn business_event(&self, frame_name: &str) {
        let (counter, outcome) = match frame_name {
            CREATE_CUSTOMER_ATTEMPT => (&self.customer_create, 0),
            CREATE_CUSTOMER_SUCCESS => (&self.customer_create, 1),
            CREATE_CUSTOMER_FAIL => (&self.customer_create, 2),
            READ_CUSTOMER_ATTEMPT => (&self.customer_read, 0),
            READ_CUSTOMER_SUCCESS => (&self.customer_read, 1),
            READ_CUSTOMER_FAIL => (&self.customer_read, 2),
            _ => return,
        };
        counter[outcome].add(1);
    }

    pub fn kinesis_error(&self, code: &str) {
        self.kinesis_errors
            .add(1, &[KeyValue::new(ATTR_ERROR_TYPE, code.to_owned())]);
    }

    fn dependency(&self, peer: &str, outcome: &str) -> Option<&BoundHistogram<f64>> {
        let peer = DEPENDENCY_PEERS.iter().position(|p| *p == peer)?;
        let outcome = DEPENDENCY_OUTCOMES.iter().position(|o| *o == outcome)?;
        Some(&self.dependency_duration[peer][outcome])
    }

    /// `http.server.request.duration` for one request. The attribute sets
    /// seen by a thread are bound on first use and kept (routes come from
    /// the route table and statuses are three digits, so there are few);
    /// a request with a method outside the standard ones is measured
    /// unbound, so a client inventing methods cannot grow the cache.
    /// `standard` is the method's static name from `method_name`.
    fn record_http(
        &self,
        elapsed: f64,
        method: &StringValue,
        standard: Option<&'static str>,
        status: u16,
        route: Option<String>,
    ) {
        type Key = (&'static str, u16, Option<String>);
        thread_local! {
            // foldhash: the keys are route patterns from the route table,
            // standard methods and status codes, none chosen by a client.
            static BOUND: RefCell<HashMap<Key, BoundHistogram<f64>, foldhash::fast::RandomState>> =
                RefCell::new(HashMap::default());
        }
        let attributes = |route: Option<String>| {
            let mut attrs = vec![
                KeyValue::new(ATTR_HTTP_METHOD, method.clone()),
                KeyValue::new(ATTR_HTTP_STATUS, i64::from(status)),
            ];
            if let Some(route) = route {
                attrs.push(KeyValue::new(ATTR_HTTP_ROUTE, route));
            }
            attrs
        };
        let Some(standard) = standard else {
            self.http_duration.record(elapsed, &attributes(route));
            return;
        };
        BOUND.with_borrow_mut(|bound| {
            let key = (standard, status, route);
            if let Some(histogram) = bound.get(&key) {
                histogram.record(elapsed);
                return;
            }
            let histogram = self.http_duration.bind(&attributes(key.2.clone()));
            histogram.record(elapsed);
            bound.insert(key, histogram);
        });
    }
}

/// The sink's own metrics, read from its counters when metrics are
/// exported, so the request path pays one atomic add per dropped frame and
/// nothing per frame sent:
/// - `cinemo.kinesis.records{result=sent|retried|dropped}`, a monotonic sum
///   (exported as deltas like every other counter);
/// - `cinemo.kinesis.buffered`: frames queued plus frames the sink holds.
pub fn register_kinesis_gauges(
    stats: std::sync::Arc<super::kinesis_sink::SinkStats>,
    queue: std::sync::Arc<super::diagnostics::FrameQueue>,
) {
    let meter = global::meter(METER_NAME);
    let counts = stats.clone();
    // The meter keeps the callbacks registered; the handles are not needed.
    let _records = meter
        .u64_observable_counter(METRIC_KINESIS_RECORDS)
        .with_callback(move |observer| {
            for (result, count) in [
                (RESULT_SENT, &counts.sent),
                (RESULT_RETRIED, &counts.retried),
                (RESULT_DROPPED, counts.dropped.as_ref()),
            ] {
                observer.observe(
                    count.load(std::sync::atomic::Ordering::Relaxed),
                    &[KeyValue::new(ATTR_RESULT, result)],
                );
            }
        })
        .build();
    let _gauge = meter
        .u64_observable_gauge(METRIC_KINESIS_BUFFERED)
        .with_callback(move |observer| {
            let queued = queue.len() as u64;
            let held = stats.in_flight.load(std::sync::atomic::Ordering::Relaxed);
            observer.observe(queued + held, &[]);
        })
        .build();
}

/// The trace id of a valid incoming `traceparent`, as 32 hex characters.
pub fn traceparent_trace_id(headers: &HeaderMap) -> Option<String> {
    super::trace_context::extract(headers).map(|sc| sc.trace_id().to_string())
}

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
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    telemetry(req, next, Roots::Start).await
}

/// The internal tier's twin of `request_telemetry`. It never starts a
/// trace: its callers are public tiers, which decide for the whole trace
/// and send `traceparent` only when there is one to follow (see
/// `DependencyCall::inject_headers`). A request without one gets no span;
/// its metrics are recorded all the same.
pub async fn follower_telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    telemetry(req, next, Roots::Follow).await
}

/// Whether a tier starts traces of its own for requests without a
/// `traceparent`.
#[derive(Clone, Copy, PartialEq)]
enum Roots {
    Start,
    Follow,
}

/// Marks a request's context when its caller sent a `traceparent`: the
/// trace is the caller's, so it goes on to the internal tier even when it
/// is not sampled (W3C: a received `traceparent` is passed on).
#[derive(Clone, Copy)]
struct CallerTrace;

async fn telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    roots: Roots,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let instruments = metrics();
    let (method, standard_method) = method_name(req.method());
    // W3C trace context, read directly (super::trace_context): the global
    // propagator sits behind a lock, and the SDK's parser allocates.
    let parent = match super::trace_context::extract(req.headers()) {
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
        None => (roots == Roots::Start && sample_new_trace())
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
    instruments.record_http(
        start.elapsed().as_secs_f64(),
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

/// Starts a span under `parent`. Its name and attributes are only built
/// (by `describe`) when the sampler kept it: with the default ratio most
/// spans are not recorded, and building names and attribute lists for them
/// was most of what tracing cost a request.
fn start_span(
    parent: &Context,
    kind: SpanKind,
    describe: impl FnOnce(&opentelemetry::trace::SpanRef<'_>),
) -> Context {
    let tracer = &metrics().tracer;
    let span = tracer
        .span_builder(UNNAMED_SPAN)
        .with_kind(kind)
        .start_with_context(tracer, parent);
    let cx = parent.with_span(span);
    let span = cx.span();
    if span.is_recording() {
        describe(&span);
    }
    cx
}

/// The placeholder name of a span until `start_span` names it.
const UNNAMED_SPAN: &str = "cinemo";

/// A client span and a `cinemo.dependency.duration` measurement for one
/// call to the internal tier or to storage.
pub struct DependencyCall {
    cx: Context,
    /// Whether `cx` holds a span of this call's own (only when sampled).
    own_span: bool,
    peer: &'static str,
    start: Instant,
}

impl DependencyCall {
    /// A child of the current request's span (set by `request_telemetry`);
    /// `name` is only called when the span is sampled. An unsampled request
    /// gets no client span at all: nothing would record it, and the
    /// request's own context carries the "not sampled" decision onwards.
    pub fn start(peer: &'static str, name: impl FnOnce() -> String) -> Self {
        let current = Context::current();
        let sampled = current.span().span_context().is_sampled();
        let cx = if sampled {
            start_span(&current, SpanKind::Client, |span| {
                span.update_name(name());
                span.set_attribute(KeyValue::new(ATTR_PEER, peer));
            })
        } else {
            current
        };
        DependencyCall {
            cx,
            own_span: sampled,
            peer,
            start: Instant::now(),
        }
    }

    /// Adds the W3C headers (`traceparent`, and `tracestate` when there is
    /// one) that make the callee's span a child of this one: when the
    /// trace is sampled, or is the caller's (it came with a `traceparent`).
    /// An unsampled trace this tier started itself is not sent on: the
    /// internal tier starts no traces (`follower_telemetry`), so without
    /// the header it records nothing, which is what `-00` would have told
    /// it, and nine reads in ten skip writing, compressing, decompressing
    /// and parsing the header (about a third of what tracing cost a read).
    pub fn inject_headers(&self, headers: &mut hyper::header::HeaderMap) {
        let span = self.cx.span();
        let sc = span.span_context();
        if !sc.is_sampled() && self.cx.get::<CallerTrace>().is_none() {
            return;
        }
        if let Some(mut traceparent) = super::trace_context::format(sc) {
            // A new value on every request: HTTP/2's header compression
            // would only churn its table with it ("never indexed").
            traceparent.set_sensitive(true);
            headers.insert(
                hyper::header::HeaderName::from_static(TRACEPARENT_HEADER),
                traceparent,
            );
            let state = sc.trace_state().header();
            if !state.is_empty()
                && let Ok(state) = hyper::header::HeaderValue::from_str(&state)
            {
                headers.insert(
                    hyper::header::HeaderName::from_static(super::trace_context::TRACESTATE_HEADER),
                    state,
                );
            }
        }
    }

    /// `outcome`: `success`, `fail` or `timeout`.
    pub fn finish(self, outcome: &'static str) {
        if self.own_span {
            let span = self.cx.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(ATTR_OUTCOME, outcome));
                if outcome != OUTCOME_SUCCESS {
                    span.set_status(Status::error(outcome));
                }
            }
            span.end();
        }
        if let Some(histogram) = metrics().dependency(self.peer, outcome) {
            histogram.record(self.start.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static(TRACEPARENT_HEADER),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn a_new_trace_kept_by_the_public_tier_is_sampled_once_not_twice() {
        use opentelemetry_sdk::trace::SamplingDecision;
        let decide = |ratio: f64, cx: &Context| {
            RootSampler { ratio }
                .should_sample(
                    Some(cx),
                    TraceId::from(u128::MAX),
                    "GET",
                    &SpanKind::Server,
                    &[],
                    &[],
                )
                .decision
        };
        let marked = Context::new().with_value(SampledNewTrace);
        // Kept by `sample_new_trace`: the SDK does not draw again, whatever
        // the ratio (a trace id of all ones is never under a ratio below 1).
        assert_eq!(decide(0.0, &marked), SamplingDecision::RecordAndSample);
        assert_eq!(decide(0.5, &marked), SamplingDecision::RecordAndSample);
        // Any other root span gets the configured ratio.
        assert_eq!(decide(0.5, &Context::new()), SamplingDecision::Drop);
        assert_eq!(
            decide(1.0, &Context::new()),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn traceparent_gives_its_trace_id_only_when_valid() {
        let ok = headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            traceparent_trace_id(&ok).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "garbage",
        ] {
            assert_eq!(traceparent_trace_id(&headers(bad)), None, "{bad}");
        }
        assert_eq!(traceparent_trace_id(&HeaderMap::new()), None);
    }

    /// What `inject_headers` sends for a request's context.
    fn injected(cx: Context) -> Option<String> {
        let call = DependencyCall {
            cx,
            own_span: false,
            peer: PEER_INTERNAL,
            start: Instant::now(),
        };
        let mut h = hyper::header::HeaderMap::new();
        call.inject_headers(&mut h);
        h.get(TRACEPARENT_HEADER)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn traceparent_goes_on_when_sampled_or_the_callers_only() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let context = |flags| {
            SpanContext::new(
                TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
                SpanId::from(0x00f067aa0ba902b7),
                flags,
                false,
                TraceState::default(),
            )
        };
        let sampled = Context::new().with_remote_span_context(context(TraceFlags::SAMPLED));
        let unsampled = || Context::new().with_remote_span_context(context(TraceFlags::default()));
        assert_eq!(
            injected(sampled).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        // A trace this tier started and did not sample: nothing to follow.
        assert_eq!(injected(unsampled()), None);
        // The caller's trace goes on, sampled or not.
        assert_eq!(
            injected(unsampled().with_value(CallerTrace)).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        );
        // No span at all (export off, no traceparent came in).
        assert_eq!(injected(Context::new()), None);
    }
}
