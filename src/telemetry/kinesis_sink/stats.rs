//! What the sink's task and its owner share: the API limits, the tuning
//! and the counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::telemetry::names::LOG_KINESIS_WRITE_FAILED;
use crate::telemetry::otel::instruments;

/// PutRecords limits (AWS API reference).
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Data plus partition key of one record.
pub const MAX_BYTES_PER_RECORD: usize = 1024 * 1024;

/// The sink's health, read by the OpenTelemetry gauges and logged at stop.
#[derive(Default)]
pub struct SinkStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    /// Records in calls whose outcome is unknown (a timeout, an unreadable
    /// answer): sent again, so each may be in the stream twice.
    pub unknown: AtomicU64,
    /// Shared with `Diagnostics`: queue overflow plus the sink's own drops.
    pub dropped: Arc<AtomicU64>,
    /// Records taken off the queue and not yet acknowledged by Kinesis.
    pub in_flight: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl SinkStats {
    pub fn set_error(&self, code: &str, text: String) {
        instruments::metrics().kinesis_error(code);
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        // Logged on change only: an outage retried every few seconds must
        // not flood the journal.
        if last.as_deref() != Some(text.as_str()) {
            tracing::warn!(target: "cinemo::kinesis", error = %text, "{LOG_KINESIS_WRITE_FAILED}");
            *last = Some(text);
        }
    }

    pub fn clear_error(&self) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if last.take().is_some() {
            tracing::info!(target: "cinemo::kinesis", "kinesis writes succeed again");
        }
    }

    pub fn drop_records(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Everything the task needs besides the client.
#[derive(Clone)]
pub struct Tuning {
    pub stream: String,
    pub fixed_key: Option<String>,
    pub batch_max_records: usize,
    pub flush_interval: Duration,
    pub max_backoff: Duration,
}
