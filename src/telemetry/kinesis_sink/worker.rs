//! The sink's task: takes frames off the queue, batches them into
//! `PutRecords` calls, retries what failed and flushes at shutdown.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stats::{MAX_BYTES_PER_CALL, MAX_BYTES_PER_RECORD, SinkStats, Tuning};
use crate::telemetry::frame::Frame;
use crate::telemetry::frame_queue::FrameQueue;
use crate::telemetry::names;

/// `cinemo.kinesis.errors` types of a call whose outcome is unknown: it
/// may have been written, and its batch is sent again.
const ERROR_CALL_TIMEOUT: &str = "CallTimeout";
const ERROR_UNREADABLE_RESPONSE: &str = "UnreadableResponse";

/// Per-record error codes worth sending again: throttling and Kinesis'
/// own transient failures. Anything else (KMS misconfiguration, ...) will
/// fail the same way next time, so the record is dropped and counted.
const RETRYABLE_RECORD_ERRORS: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "KMSThrottlingException",
];

struct Record {
    data: Vec<u8>,
    key: String,
}

/// Room for a frame's JSON without regrowing: metric frames are about 110
/// bytes, log frames 150-250.
const RECORD_CAPACITY: usize = 256;

/// 16 random lowercase hex digits (what `format!("{:016x}", n)` writes, at
/// a fraction of its cost: one per record).
fn random_key() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = rand::random::<u64>();
    let mut key = [0u8; 16];
    for digit in key.iter_mut().rev() {
        *digit = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    key.iter().map(|&b| char::from(b)).collect()
}

impl Record {
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

pub(super) struct Worker {
    client: Client,
    tuning: Tuning,
    queue: Arc<FrameQueue>,
    /// Reused buffer for frames taken off the queue.
    taken: Vec<Frame>,
    stats: Arc<SinkStats>,
    stop: CancellationToken,
    /// Taken off the queue, waiting for the next batch.
    pending: VecDeque<Record>,
    pending_bytes: usize,
    /// The batch being sent (or its failed remainder being retried).
    in_flight: Vec<Record>,
}

enum Sent {
    Done,
    /// Stop was requested while backing off; the remainder is still in
    /// `in_flight`.
    Interrupted,
}

impl Worker {
    pub(super) fn new(
        client: Client,
        tuning: Tuning,
        queue: Arc<FrameQueue>,
        stats: Arc<SinkStats>,
        stop: CancellationToken,
    ) -> Self {
        Worker {
            client,
            tuning,
            queue,
            taken: Vec::new(),
            stats,
            stop,
            pending: VecDeque::new(),
            pending_bytes: 0,
            in_flight: Vec::new(),
        }
    }

    pub(super) async fn run(mut self, deadline: Arc<Mutex<Option<Instant>>>) {
        // When the oldest frame not yet sent must go, full batch or not.
        let mut flush_at: Option<Instant> = None;
        loop {
            let ready = self.pending.len() + self.queue.len();
            let due = flush_at.is_some_and(|at| at <= Instant::now());
            if ready >= self.queue.batch() || self.batch_full() || (ready > 0 && due) {
                self.take_queued();
                if let Sent::Interrupted = self.send_next_batch(false).await {
                    break;
                }
                // What is left (or arrives next) gets a fresh interval.
                flush_at = None;
                continue;
            }
            if ready == 0 {
                flush_at = None;
            } else if flush_at.is_none() {
                flush_at = Some(Instant::now() + self.tuning.flush_interval);
            }
            let wait_flush = async {
                match flush_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Every wake-up only leads back to the checks above.
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                _ = self.queue.notified() => {}
                _ = wait_flush => {}
            }
        }
        self.final_flush(deadline).await;
    }

    /// Moves queued frames into `pending`, up to one batch.
    fn take_queued(&mut self) {
        let room = self
            .tuning
            .batch_max_records
            .saturating_sub(self.pending.len());
        let mut taken = std::mem::take(&mut self.taken);
        self.queue.take(room, &mut taken);
        for frame in taken.drain(..) {
            self.push(frame);
        }
        self.taken = taken;
    }

    fn push(&mut self, frame: Frame) {
        let mut data = Vec::with_capacity(RECORD_CAPACITY);
        frame.write_json(&mut data);
        let key = match &self.tuning.fixed_key {
            Some(k) => k.clone(),
            // A random key per record spreads load over every shard; the
            // frames carry their own timestamps, so order across shards
            // does not matter to readers.
            None => random_key(),
        };
        let record = Record { data, key };
        if record.size() > MAX_BYTES_PER_RECORD {
            self.stats.set_error(
                "RecordTooLarge",
                format!("dropped a {} byte frame", record.size()),
            );
            self.stats.drop_records(1);
            return;
        }
        self.pending_bytes += record.size();
        self.pending.push_back(record);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn batch_full(&self) -> bool {
        self.pending.len() >= self.tuning.batch_max_records
            || self.pending_bytes >= MAX_BYTES_PER_CALL
    }

    /// Moves the next batch (within the call limits) from `pending` to
    /// `in_flight` and sends it until every record is written or dropped.
    async fn send_next_batch(&mut self, final_phase: bool) -> Sent {
        if self.in_flight.is_empty() {
            let mut bytes = 0;
            while let Some(next) = self.pending.front() {
                if self.in_flight.len() >= self.tuning.batch_max_records
                    || (bytes + next.size() > MAX_BYTES_PER_CALL && !self.in_flight.is_empty())
                {
                    break;
                }
                bytes += next.size();
                self.pending_bytes -= next.size();
                if let Some(record) = self.pending.pop_front() {
                    self.in_flight.push(record);
                }
            }
        }
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(self.tuning.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        while !self.in_flight.is_empty() {
            self.put_in_flight().await;
            if self.in_flight.is_empty() {
                break;
            }
            let delay = backoff.next().unwrap_or(self.tuning.max_backoff);
            if final_phase {
                tokio::time::sleep(delay).await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.stop.cancelled() => return Sent::Interrupted,
                }
            }
            let n = self.in_flight.len() as u64;
            self.stats.retried.fetch_add(n, Ordering::Relaxed);
        }
        Sent::Done
    }

    /// One PutRecords call for `in_flight`; leaves only the records to retry.
    async fn put_in_flight(&mut self) {
        let entries: Result<Vec<_>, _> = self
            .in_flight
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(r.data.clone()))
                    .partition_key(&r.key)
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                // Cannot happen with data and key set; never loop on it.
                self.give_up_in_flight("BuildError", e.to_string());
                return;
            }
        };
        let result = self
            .client
            .put_records()
            .stream_name(&self.tuning.stream)
            .set_records(Some(entries))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                // A call that timed out, or whose answer could not be read,
                // may have been written all the same: the batch is sent
                // again (nothing is lost) and its records may then be in
                // the stream twice. Every other failure wrote nothing.
                let outcome_unknown = match &e {
                    SdkError::TimeoutError(_) => Some(ERROR_CALL_TIMEOUT),
                    SdkError::ResponseError(_) => Some(ERROR_UNREADABLE_RESPONSE),
                    _ => None,
                };
                if let Some(code) = outcome_unknown {
                    let n = self.in_flight.len() as u64;
                    self.stats.unknown.fetch_add(n, Ordering::Relaxed);
                    let text = format!(
                        "PutRecords outcome unknown, the batch is sent again and may be duplicated: {}",
                        DisplayErrorContext(&e)
                    );
                    self.stats.set_error(code, text);
                    return;
                }
                let code = e.code().unwrap_or("ConnectionError").to_owned();
                let text = format!("PutRecords failed: {}", DisplayErrorContext(&e));
                if code == "ValidationException" {
                    // The batch itself is malformed; it would fail forever.
                    self.give_up_in_flight(&code, text);
                } else {
                    // Nothing was written: the whole batch is retried.
                    self.stats.set_error(&code, text);
                }
                return;
            }
        };
        let results = output.records();
        let mut retry = Vec::new();
        let mut sent = 0u64;
        let mut dropped = 0u64;
        let records = std::mem::take(&mut self.in_flight);
        let total = records.len() as u64;
        for (i, record) in records.into_iter().enumerate() {
            // A missing result entry is treated as a retryable failure.
            let code = match results.get(i) {
                Some(r) => r.error_code().map(str::to_owned),
                None => Some("MissingResult".to_owned()),
            };
            match code {
                None => sent += 1,
                Some(code)
                    if RETRYABLE_RECORD_ERRORS.contains(&code.as_str())
                        || code == "MissingResult" =>
                {
                    self.stats
                        .set_error(&code, format!("record failed: {code}"));
                    retry.push(record);
                }
                Some(code) => {
                    self.stats
                        .set_error(&code, format!("record rejected: {code}"));
                    dropped += 1;
                }
            }
        }
        self.stats.sent.fetch_add(sent, Ordering::Relaxed);
        self.stats
            .in_flight
            .fetch_sub(total - retry.len() as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.stats.drop_records(dropped as usize);
        }
        if retry.is_empty() {
            self.stats.clear_error();
        }
        self.in_flight = retry;
    }

    fn give_up_in_flight(&mut self, code: &str, text: String) {
        let n = self.in_flight.len();
        self.stats.set_error(code, text);
        self.stats.drop_records(n);
        self.stats.in_flight.fetch_sub(n as u64, Ordering::Relaxed);
        self.in_flight.clear();
    }

    /// After stop: everything still queued is sent until the deadline;
    /// whatever is left then is dropped and counted.
    async fn final_flush(mut self, deadline: Arc<Mutex<Option<Instant>>>) {
        let deadline = deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
        let mut taken = std::mem::take(&mut self.taken);
        self.queue.take(usize::MAX, &mut taken);
        for frame in taken.drain(..) {
            self.push(frame);
        }
        let flushed = tokio::time::timeout_at(deadline, async {
            while !self.in_flight.is_empty() || !self.pending.is_empty() {
                self.send_next_batch(true).await;
            }
        })
        .await;
        if flushed.is_err() {
            let left = self.in_flight.len() + self.pending.len();
            self.stats.drop_records(left);
            self.stats
                .in_flight
                .fetch_sub(left as u64, Ordering::Relaxed);
            tracing::warn!(target: "cinemo::kinesis", left, "shutdown deadline reached with frames unsent");
        }
        let last_error = self
            .stats
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        tracing::info!(
            target: "cinemo::kinesis",
            sent = self.stats.sent.load(Ordering::Relaxed),
            retried = self.stats.retried.load(Ordering::Relaxed),
            unknown = self.stats.unknown.load(Ordering::Relaxed),
            dropped = self.stats.dropped.load(Ordering::Relaxed),
            last_error = last_error.as_deref().unwrap_or(""),
            "{}",
            names::LOG_KINESIS_SINK_STOPPED
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_are_sixteen_lowercase_hex_digits() {
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| random_key()).collect();
        assert_eq!(keys.len(), 1000, "keys repeat");
        for key in &keys {
            assert_eq!(key.len(), 16, "{key}");
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{key}"
            );
            let n = u64::from_str_radix(key, 16).unwrap();
            assert_eq!(&format!("{n:016x}"), key);
        }
    }
}
