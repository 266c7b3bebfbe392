//! Whether metrics and traces reach the collector, said once: the OTLP
//! exporters are wrapped so that the first failed export logs one WARN
//! (which endpoint, why, and that requests are unaffected) and the first
//! success after it one INFO. Every failure is logged at DEBUG (target
//! `cinemo::telemetry::otel::export`); the SDK's own ERROR per failed
//! export is filtered out (`crate::telemetry::logging`).
//!
//! The SDK's error says only "network error" for a transport failure, so
//! the HTTP client is wrapped too and keeps the last transport error
//! (connection refused, timed out, ...) for the WARN line.
//!
//! At shutdown the final flush is skipped when the collector is not known
//! to be up and does not accept a connection within `PROBE_TIMEOUT`, and
//! an export still retrying is not waited for (`OtelGuard::shutdown`): a
//! laptop without a collector then stops at once, instead of waiting on
//! the exporter's retries for every signal.

use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::telemetry::names::{LOG_OTLP_EXPORT_FAILING, LOG_OTLP_EXPORT_RESTORED};

/// How long the shutdown waits for a TCP connection to a collector that
/// did not take the last export.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Metrics,
    Traces,
}

impl Signal {
    fn bit(self) -> u8 {
        match self {
            Signal::Metrics => 1,
            Signal::Traces => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
        }
    }
}

/// The collector as both exporters see it.
#[derive(Debug)]
pub struct Collector {
    /// `otlp.endpoint`, without the signal paths.
    base: String,
    state: Mutex<State>,
    /// Set at shutdown when the collector is not there: exports end at once.
    skip: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Signals whose last export failed (`Signal::bit`).
    down: u8,
    /// Some export has succeeded since the start.
    ever_up: bool,
    /// When the first of the signals now down failed, and failures since.
    since: Option<Instant>,
    failures: u64,
}

impl Collector {
    pub fn new(base: &str) -> Arc<Collector> {
        Arc::new(Collector {
            base: base.to_owned(),
            state: Mutex::default(),
            skip: AtomicBool::new(false),
        })
    }

    fn record(&self, signal: Signal, result: &OTelSdkResult, transport: Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let bit = signal.bit();
        match result {
            Ok(()) => {
                state.ever_up = true;
                if state.down & bit != 0 {
                    state.down &= !bit;
                    if state.down == 0 {
                        let down_secs = state.since.take().map_or(0, |t| t.elapsed().as_secs());
                        tracing::info!(
                            endpoint = %self.base,
                            down_secs,
                            failed_exports = state.failures,
                            "{LOG_OTLP_EXPORT_RESTORED}"
                        );
                        state.failures = 0;
                    }
                }
            }
            Err(e) => {
                let error = transport.unwrap_or_else(|| e.to_string());
                let endpoint = format!("{}{}", self.base, signal.path());
                tracing::debug!(signal = signal.name(), %endpoint, %error, "OTLP export failed");
                state.failures += 1;
                if state.down == 0 {
                    state.since = Some(Instant::now());
                    tracing::warn!(
                        signal = signal.name(),
                        %endpoint,
                        %error,
                        "{LOG_OTLP_EXPORT_FAILING}"
                    );
                }
                state.down |= bit;
            }
        }
    }

    /// Called once at shutdown, before the providers flush: when the
    /// collector is not known to be up and does not accept a connection,
    /// the final exports are skipped. Returns whether it is there.
    pub fn prepare_final_flush(&self) -> bool {
        let up = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.ever_up && state.down == 0
        };
        if up || self.accepts_connections() {
            return true;
        }
        tracing::debug!(endpoint = %self.base, "collector not reachable; final export skipped");
        self.skip.store(true, Ordering::Relaxed);
        false
    }

    fn accepts_connections(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.base) else {
            return false;
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(addrs) = (host, port).to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|addr| std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok())
    }

    fn skipping(&self) -> bool {
        self.skip.load(Ordering::Relaxed)
    }
}

/// The last transport error of one exporter's HTTP client.
type LastError = Arc<Mutex<Option<String>>>;

/// An OTLP exporter that reports to `Collector`.
#[derive(Debug)]
pub struct Watched<E> {
    inner: E,
    signal: Signal,
    collector: Arc<Collector>,
    last_error: LastError,
}

impl<E> Watched<E> {
    /// `inner` must send through `client` (`WithHttpConfig::with_http_client`).
    pub fn new(inner: E, signal: Signal, collector: Arc<Collector>, client: &WatchedHttp) -> Self {
        Watched {
            inner,
            signal,
            collector,
            last_error: client.last_error.clone(),
        }
    }

    fn skipped() -> OTelSdkResult {
        Err(OTelSdkError::InternalFailure(
            "final export skipped: the collector is not reachable".into(),
        ))
    }

    fn take_transport_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn record(&self, result: &OTelSdkResult) {
        let transport = self.take_transport_error();
        self.collector.record(self.signal, result, transport);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.collector.skipping() {
            return Self::skipped();
        }
        self.take_transport_error();
        let result = self.inner.export(metrics).await;
        self.record(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.collector.skipping() {
            return Self::skipped();
        }
        self.take_transport_error();
        let result = self.inner.export(batch).await;
        self.record(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The blocking reqwest client the OTLP exporter would build itself, with
/// its timeout, keeping the text of the last transport error.
#[derive(Debug, Clone)]
pub struct WatchedHttp {
    inner: reqwest::blocking::Client,
    last_error: LastError,
}

impl WatchedHttp {
    /// Must not run inside an async runtime (reqwest's blocking client
    /// starts one of its own).
    pub fn new(timeout: Duration) -> anyhow::Result<WatchedHttp> {
        Ok(WatchedHttp {
            inner: reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()?,
            last_error: LastError::default(),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for WatchedHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let result = self.inner.send_bytes(request).await;
        if let Err(e) = &result {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(chain(e.as_ref()));
        }
        result
    }
}

/// An error and its causes, `: `-separated, without the repetitions
/// reqwest and hyper put in (`error sending request for url (...)`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}
