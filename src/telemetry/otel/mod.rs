//! OpenTelemetry: metrics and traces over OTLP/HTTP (protobuf) to the
//! collector sidecar. Export runs on the SDK's own background threads with
//! timeouts, so a missing collector costs requests nothing: the request path
//! only records into in-memory aggregations and span queues.
//!
//! `mod.rs` sets the SDK up and shuts it down; `instruments` holds the
//! metric instruments, `sampling` the decision for new traces, `spans` the
//! spans and latency of calls to dependencies. The HTTP server middleware
//! that uses them lives with the HTTP code (`crate::http::telemetry`).

mod export;
pub mod instruments;
pub mod sampling;
pub mod spans;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

use super::names::RESOURCE_MODE;
use super::priority;
use crate::build_info;
use crate::settings::Settings;
use export::{Collector, Signal, Watched, WatchedHttp};

pub use spans::DependencyCall;

/// Keeps the providers so shutdown can flush them.
pub struct OtelGuard {
    meters: SdkMeterProvider,
    tracer: SdkTracerProvider,
    collector: Arc<Collector>,
}

/// Installs the global propagator always (so `traceparent` is honoured and
/// forwarded even with export off) and, when `otlp.enabled`, the exporting
/// meter and tracer providers. Must run before the first `metrics()` call.
///
/// The SDK starts its export threads (batch span processor, periodic metric
/// reader, the HTTP client's runtime) while the providers are built, and a
/// new thread starts with its creator's nice value and scheduling policy:
/// building them on a thread at export priority puts all of them there
/// (`crate::telemetry::priority::lower_thread_priority`).
pub fn init(settings: &Settings) -> anyhow::Result<Option<OtelGuard>> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("otel-init".into())
            .spawn_scoped(scope, || {
                priority::lower_thread_priority();
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

    let collector = Collector::new(base);

    let client = WatchedHttp::new(timeout)?;
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_http_client(client.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}{}", Signal::Metrics.path()))
        .with_timeout(timeout)
        // Deltas: the collector's awsemf exporter turns them into
        // CloudWatch sums without keeping per-process state.
        .with_temporality(Temporality::Delta)
        .build()?;
    let metric_exporter =
        Watched::new(metric_exporter, Signal::Metrics, collector.clone(), &client);
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter)
        .with_interval(interval)
        .build();
    let meters = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource.clone())
        .build();

    let client = WatchedHttp::new(timeout)?;
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}{}", Signal::Traces.path()))
        .with_timeout(timeout)
        .build()?;
    let span_exporter = Watched::new(span_exporter, Signal::Traces, collector.clone(), &client);
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
    let sampler = sampling::sampler(settings.otlp.trace_sample_ratio);
    let tracer = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(processor)
        .with_resource(resource)
        .build();

    global::set_meter_provider(meters.clone());
    global::set_tracer_provider(tracer.clone());
    tracing::info!(endpoint = base, "OpenTelemetry export on");
    Ok(Some(OtelGuard {
        meters,
        tracer,
        collector,
    }))
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

impl OtelGuard {
    /// Flushes and stops both providers, waiting at most `deadline`. When
    /// the collector is not there (`Collector::prepare_final_flush`) there
    /// is no final export, and an export still retrying in the background
    /// is given only `ABANDON_AFTER`: what it holds cannot be delivered.
    /// The SDK calls block, so they run on their own thread.
    pub fn shutdown(self, deadline: Duration) {
        const ABANDON_AFTER: Duration = Duration::from_millis(100);
        let reachable = self.collector.prepare_final_flush();
        let wait = if reachable {
            deadline
        } else {
            deadline.min(ABANDON_AFTER)
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = self.tracer.shutdown_with_timeout(deadline);
                let _ = self.meters.shutdown_with_timeout(deadline);
                let _ = done_tx.send(());
            });
        if spawned.is_ok() && done_rx.recv_timeout(wait).is_err() && reachable {
            tracing::warn!("OpenTelemetry flush did not finish before the shutdown deadline");
        }
    }
}
