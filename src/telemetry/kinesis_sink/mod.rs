//! The Kinesis sink: a background task that drains the `Diagnostics` queue
//! into `PutRecords` calls. Modelled on vector's `aws_kinesis` sink: batches
//! within the API limits, retries only the records that failed, treats
//! throughput errors as retryable.
//!
//! The queue between request handlers and this task *is* the bounded
//! buffer: while Kinesis is slow or down this task sits in its backoff, the
//! queue fills, and `Diagnostics::emit` drops and counts what does not fit.
//! Requests never wait for Kinesis. The task is woken only when the queue
//! stops being empty (to start the flush timer) and when a whole batch is
//! queued, not once per frame (see `FrameQueue`).

mod stats;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::diagnostics::Diagnostics;
use super::frame_queue::FrameQueue;
use super::otel::instruments::{self, KinesisRecords};
use super::priority;
use crate::settings::KinesisSettings;
use stats::Tuning;
pub use stats::{MAX_BYTES_PER_CALL, MAX_BYTES_PER_RECORD, MAX_RECORDS_PER_CALL, SinkStats};
use worker::Worker;

/// The running sink; `diagnostics()` hands out the producer side.
pub struct KinesisSink {
    queue: Arc<FrameQueue>,
    stats: Arc<SinkStats>,
    stop: CancellationToken,
    deadline: Arc<Mutex<Option<Instant>>>,
    /// Resolves when the sink's thread has finished its final flush.
    done: oneshot::Receiver<()>,
}

impl KinesisSink {
    /// Builds the client (standard AWS credential chain) and starts the task
    /// on a thread of its own (a single-threaded runtime at a lower CPU
    /// priority, see `super::priority::lower_thread_priority`).
    pub async fn start(settings: &KinesisSettings) -> anyhow::Result<Self> {
        let stream = settings.stream_name.clone();
        let client = super::kinesis_client::build(settings).await;
        let tuning = Tuning {
            stream,
            fixed_key: settings.partition_key.clone().filter(|k| !k.is_empty()),
            batch_max_records: settings.batch_max_records.clamp(1, MAX_RECORDS_PER_CALL),
            flush_interval: Duration::from_millis(settings.flush_interval_ms.max(1)),
            max_backoff: Duration::from_millis(settings.max_backoff_ms.max(1)),
        };
        let queue = Arc::new(FrameQueue::new(
            settings.buffer_capacity.max(1),
            tuning.batch_max_records,
        ));
        let stats = Arc::new(SinkStats::default());
        let stop = CancellationToken::new();
        let deadline = Arc::new(Mutex::new(None));
        observe(&stats, &queue);
        let worker = Worker::new(client, tuning, queue.clone(), stats.clone(), stop.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the Kinesis sink's runtime")?;
        let (done_tx, done) = oneshot::channel();
        let run = worker.run(deadline.clone());
        std::thread::Builder::new()
            .name("cinemo-kinesis".into())
            .spawn(move || {
                priority::lower_thread_priority();
                runtime.block_on(run);
                let _ = done_tx.send(());
            })
            .context("starting the Kinesis sink thread")?;
        tracing::info!(
            target: "cinemo::kinesis",
            stream = %settings.stream_name,
            capacity = settings.buffer_capacity,
            "kinesis sink started"
        );
        Ok(KinesisSink {
            queue,
            stats,
            stop,
            deadline,
            done,
        })
    }

    /// The producer handle for one tier's frames.
    pub fn diagnostics(&self, app_id: &'static str) -> Diagnostics {
        Diagnostics::new(app_id, self.queue.clone(), self.stats.dropped.clone())
    }

    /// Sends what is queued, giving up at `deadline`; what is left then is
    /// counted as dropped. Called after HTTP has drained.
    pub async fn shutdown(self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
        self.stop.cancel();
        // The task bounds itself by the deadline; the grace only covers its
        // bookkeeping.
        let _ = tokio::time::timeout_at(deadline + Duration::from_millis(500), self.done).await;
    }
}

/// Exports the sink's counts as metrics (`instruments::observe_kinesis`).
fn observe(stats: &Arc<SinkStats>, queue: &Arc<FrameQueue>) {
    let counts = stats.clone();
    let (held, queue) = (stats.clone(), queue.clone());
    instruments::observe_kinesis(
        move || KinesisRecords {
            sent: counts.sent.load(Ordering::Relaxed),
            retried: counts.retried.load(Ordering::Relaxed),
            dropped: counts.dropped.load(Ordering::Relaxed),
        },
        move || queue.len() as u64 + held.in_flight.load(Ordering::Relaxed),
    );
}
