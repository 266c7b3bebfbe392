//! One shard, read in order: GetShardIterator once, then GetRecords with
//! the iterator each answer hands back (API reference, GetRecords).
//!
//! - Calls to one shard are at least 200 ms apart: GetRecords allows five
//!   per second per shard, shared with every other reader of the stream.
//! - Throttling (`ProvisionedThroughputExceededException`) and failed calls
//!   are retried after an exponential backoff (crate `backon`): 200 ms
//!   doubling up to 2 s, each wait plus up to as much again at random.
//!   Kinesis throttles a shard's reads for a second (five after a 10 MiB
//!   read, far more than this stream's pages), so longer waits would only
//!   leave a follow behind. A Kinesis that cannot be reached for a minute
//!   ends the command; throttling never does.
//! - An iterator is valid for five minutes (API reference,
//!   GetShardIterator); an expired one is replaced by one right after the
//!   last record read (`AFTER_SEQUENCE_NUMBER`), or at the original start
//!   when nothing was read yet, so nothing is lost or read twice.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use super::errors::{Failure, Target, classify};

/// Where a shard's reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Records that reached the stream at or after this time (epoch ms):
    /// `AT_TIMESTAMP`.
    At(i64),
    /// Records that reach it from now on: `LATEST`.
    Latest,
    /// Everything the shard holds: `TRIM_HORIZON`, for the children of a
    /// reshard during the read (all their records are new).
    TrimHorizon,
}

/// At most five GetRecords calls per second per shard.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// The most records one GetRecords call returns (and its default limit).
const PAGE_LIMIT: usize = 10_000;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a Kinesis that fails every call (unreachable, timing out,
/// answering 5xx) is waited out before the command gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// One record as read: the data as written and when it reached the stream.
#[derive(Debug)]
pub struct RawRecord {
    pub data: Vec<u8>,
    /// `ApproximateArrivalTimestamp`, epoch ms (0 when absent).
    pub arrival_ms: i64,
}

#[derive(Debug)]
pub enum Polled {
    /// Records in shard order.
    Records(Vec<RawRecord>),
    /// The call failed; it is made again at `next_call`. `notice` says why,
    /// when it is worth telling (not for throttling, which is routine).
    Retrying { notice: Option<String> },
}

pub struct ShardReader {
    pub id: String,
    start: Start,
    /// When the command started: a `LATEST` iterator that expires (or
    /// could not be had at once) before any record came is replaced by one
    /// at this time.
    started_ms: i64,
    iterator: Option<String>,
    /// `LATEST` was asked for once: from then on, that start is this
    /// command's start time, so a retry or a new iterator loses nothing.
    latest_taken: bool,
    last_sequence: Option<String>,
    next_call: Instant,
    caught_up: bool,
    ended: bool,
    backoff: Option<ExponentialBackoff>,
    failing_since: Option<Instant>,
}

impl ShardReader {
    pub fn new(id: String, start: Start, started_ms: i64) -> ShardReader {
        ShardReader {
            id,
            start,
            started_ms,
            iterator: None,
            latest_taken: false,
            last_sequence: None,
            next_call: Instant::now(),
            caught_up: false,
            ended: false,
            backoff: None,
            failing_since: None,
        }
    }

    pub fn next_call(&self) -> Instant {
        self.next_call
    }

    pub fn is_due(&self, now: Instant) -> bool {
        !self.ended && self.next_call <= now
    }

    /// The last GetRecords said nothing newer was there at that moment.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Closed by a reshard and read to its end.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Gets the first iterator now, so that a `LATEST` start is pinned to
    /// this moment. A failure worth retrying is left to the first poll.
    pub async fn open(&mut self, client: &Client, target: &Target) -> Result<(), String> {
        match self.get_iterator(client, target).await {
            Ok(()) => Ok(()),
            Err(failure) => self.failed(failure).map(|_| ()),
        }
    }

    /// One GetRecords call (after a GetShardIterator when the shard has no
    /// valid iterator). Err is a line that ends the command.
    pub async fn poll(&mut self, client: &Client, target: &Target) -> Result<Polled, String> {
        self.next_call = Instant::now() + MIN_INTERVAL;
        if self.iterator.is_none()
            && let Err(failure) = self.get_iterator(client, target).await
        {
            return self.failed(failure);
        }
        let Some(iterator) = self.iterator.clone() else {
            return Ok(Polled::Records(Vec::new()));
        };
        let out = match client.get_records().shard_iterator(iterator).send().await {
            Ok(out) => out,
            Err(e) => return self.failed(classify(&e, "GetRecords", target)),
        };
        self.backoff = None;
        self.failing_since = None;
        let n = out.records.len();
        if let Some(last) = out.records.last() {
            self.last_sequence = Some(last.sequence_number.clone());
        }
        let behind = out
            .millis_behind_latest
            .unwrap_or(if n == 0 { 0 } else { 1 });
        self.iterator = out.next_shard_iterator;
        // A closed shard read to its end answers without a next iterator.
        self.ended = self.iterator.is_none();
        self.caught_up = self.ended || (behind == 0 && n < PAGE_LIMIT);
        let records = out
            .records
            .into_iter()
            .map(|r| RawRecord {
                arrival_ms: r
                    .approximate_arrival_timestamp
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
                data: r.data.into_inner(),
            })
            .collect();
        Ok(Polled::Records(records))
    }

    async fn get_iterator(&mut self, client: &Client, target: &Target) -> Result<(), Failure> {
        let request = client
            .get_shard_iterator()
            .stream_name(&target.stream)
            .shard_id(&self.id);
        let request = match (&self.last_sequence, self.start) {
            (Some(sequence), _) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            (None, Start::At(ms)) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(ms)),
            (None, Start::Latest) if !self.latest_taken => {
                self.latest_taken = true;
                request.shard_iterator_type(ShardIteratorType::Latest)
            }
            (None, Start::Latest) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(self.started_ms)),
            (None, Start::TrimHorizon) => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
        };
        let out = request
            .send()
            .await
            .map_err(|e| classify(&e, "GetShardIterator", target))?;
        match out.shard_iterator {
            Some(iterator) => self.iterator = Some(iterator),
            // Not expected (a closed shard has an iterator at its end);
            // nothing can be read from it either way.
            None => {
                self.ended = true;
                self.caught_up = true;
            }
        }
        Ok(())
    }

    fn failed(&mut self, failure: Failure) -> Result<Polled, String> {
        let now = Instant::now();
        match failure {
            Failure::Fatal(line) => Err(line),
            Failure::ExpiredIterator => {
                self.iterator = None;
                Ok(Polled::Retrying { notice: None })
            }
            Failure::Retry { reason, throttled } => {
                let since = *self.failing_since.get_or_insert(now);
                if !throttled && now.duration_since(since) >= GIVE_UP_AFTER {
                    return Err(format!(
                        "{reason} (failing for {} s, giving up)",
                        GIVE_UP_AFTER.as_secs()
                    ));
                }
                let delay = self
                    .backoff
                    .get_or_insert_with(|| {
                        ExponentialBuilder::default()
                            .with_min_delay(BACKOFF_MIN)
                            .with_max_delay(BACKOFF_MAX)
                            .with_jitter()
                            .without_max_times()
                            .build()
                    })
                    .next()
                    .unwrap_or(BACKOFF_MAX);
                self.next_call = now + delay;
                Ok(Polled::Retrying {
                    notice: (!throttled).then_some(reason),
                })
            }
        }
    }
}
