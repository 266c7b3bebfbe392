//! The metric instruments, created once from the global meter. Every
//! measurement cinemo makes goes through here; this module knows nothing
//! of what it measures.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram};
use opentelemetry::{KeyValue, StringValue};

use crate::telemetry::names::*;

/// The instruments, created once from the global meter. Every attribute
/// set known in advance is bound once (`experimental_metrics_bound_instruments`):
/// a bound measurement is a direct write, where an unbound one filters,
/// hashes and looks up its attributes under a lock, which was most of what
/// metrics cost a request.
pub struct Instruments {
    pub(super) tracer: BoxedTracer,
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

    pub(super) fn dependency(&self, peer: &str, outcome: &str) -> Option<&BoundHistogram<f64>> {
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
    pub fn record_http(
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

/// The Kinesis sink's own metrics, read from its counters when metrics are
/// exported, so the request path pays one atomic add per dropped frame and
/// nothing per frame sent:
/// - `cinemo.kinesis.records{result=sent|retried|dropped}`, a monotonic sum
///   (exported as deltas like every other counter), from `records`;
/// - `cinemo.kinesis.buffered`: frames queued plus frames the sink holds,
///   from `buffered`.
pub fn observe_kinesis(
    records: impl Fn() -> KinesisRecords + Send + Sync + 'static,
    buffered: impl Fn() -> u64 + Send + Sync + 'static,
) {
    let meter = global::meter(METER_NAME);
    // The meter keeps the callbacks registered; the handles are not needed.
    let _records = meter
        .u64_observable_counter(METRIC_KINESIS_RECORDS)
        .with_callback(move |observer| {
            let counts = records();
            for (result, count) in [
                (RESULT_SENT, counts.sent),
                (RESULT_RETRIED, counts.retried),
                (RESULT_DROPPED, counts.dropped),
            ] {
                observer.observe(count, &[KeyValue::new(ATTR_RESULT, result)]);
            }
        })
        .build();
    let _gauge = meter
        .u64_observable_gauge(METRIC_KINESIS_BUFFERED)
        .with_callback(move |observer| observer.observe(buffered(), &[]))
        .build();
}

/// The Kinesis sink's record counts since start, by result.
pub struct KinesisRecords {
    pub sent: u64,
    pub retried: u64,
    pub dropped: u64,
}
