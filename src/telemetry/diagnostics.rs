//! The contract's diagnostics frames (metric and X-Trace log frames) and the
//! handle request handlers use to emit them. Emitting never blocks and never
//! fails a request: frames go into a bounded queue that a background sink
//! drains; when the queue is full the frame is dropped and counted.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Notify;

use crate::domain::TraceToken;

/// One Kinesis record's data, exactly as in CONTRACT.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum Frame {
    Logs(LogFrame),
    Metrics(MetricFrame),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFrame {
    pub app_id: &'static str,
    pub trace_id: String,
    pub message: String,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFrame {
    pub app_id: &'static str,
    pub name: &'static str,
    pub count: u64,
    pub timestamp: i64,
}

impl Frame {
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(160);
        self.write_json(&mut out);
        // Only whole UTF-8 strings and ASCII are written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the frame's JSON to `out`: the bytes `serde_json` writes for
    /// the derived `Serialize` above (tested against it), without serde's
    /// per-field machinery. The Kinesis sink writes every record this way,
    /// straight into the record's buffer; it was a fifth of the sink's own
    /// work per record.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Logs(f) => {
                out.extend_from_slice(br#"{"type":"logs","data":{"appId":"#);
                json_str(out, f.app_id);
                out.extend_from_slice(br#","traceId":"#);
                json_str(out, &f.trace_id);
                out.extend_from_slice(br#","message":"#);
                json_str(out, &f.message);
                out.extend_from_slice(br#","timestamp":"#);
                json_int(out, f.timestamp);
            }
            Frame::Metrics(f) => {
                out.extend_from_slice(br#"{"type":"metrics","data":{"appId":"#);
                json_str(out, f.app_id);
                out.extend_from_slice(br#","name":"#);
                json_str(out, f.name);
                out.extend_from_slice(br#","count":"#);
                json_int(out, f.count);
                out.extend_from_slice(br#","timestamp":"#);
                json_int(out, f.timestamp);
            }
        }
        out.extend_from_slice(b"}}");
    }
}

/// A JSON integer, as serde_json writes it (itoa).
fn json_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string literal with serde_json's escaping.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The bounded queue between request handlers and the Kinesis sink.
///
/// A channel would wake the sink for every frame: one cross-thread wake-up
/// (an eventfd write and a context switch) per frame, five frames per
/// traced read, which cost more than everything else telemetry does. The
/// sink only needs to hear two things: the queue stopped being empty (so it
/// can start its flush timer) and a whole batch is waiting. Producers
/// notify on exactly those two transitions; in between a push is a short
/// uncontended lock.
///
/// The consumer never holds the producers' lock for more than a swap of
/// two buffers: it runs at the lowest CPU priority (`SCHED_IDLE`), and a
/// thread at that priority preempted while holding the lock would keep
/// every request thread that wants to push waiting until the host has an
/// idle moment. Frames are moved out in one swap into a buffer only the
/// consumer touches, and handed out from there.
pub struct FrameQueue {
    /// Where producers push.
    inbox: Mutex<VecDeque<Frame>>,
    /// Frames moved out of `inbox` and not yet taken; only the consumer
    /// locks it.
    outbox: Mutex<VecDeque<Frame>>,
    /// Frames in both buffers, readable without a lock. Only producers
    /// (under the `inbox` lock) add to it, so a producer that checks it
    /// under that lock never overfills the queue.
    len: AtomicUsize,
    capacity: usize,
    batch: usize,
    wake: Notify,
}

impl FrameQueue {
    /// Holds at most `capacity` frames; wakes the consumer when it stops
    /// being empty and when it reaches `batch` frames (or is full, when
    /// that comes first).
    pub fn new(capacity: usize, batch: usize) -> Self {
        let capacity = capacity.max(1);
        FrameQueue {
            inbox: Mutex::new(VecDeque::new()),
            outbox: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            capacity,
            batch: batch.clamp(1, capacity),
            wake: Notify::new(),
        }
    }

    /// The length at which the consumer is woken to send a batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Queues `frame`, or gives it back when the queue is full.
    pub fn push(&self, frame: Frame) -> Result<(), Frame> {
        let len = {
            let mut inbox = lock(&self.inbox);
            if self.len.load(Ordering::Relaxed) >= self.capacity {
                return Err(frame);
            }
            inbox.push_back(frame);
            self.len.fetch_add(1, Ordering::Relaxed) + 1
        };
        if len == 1 || len == self.batch {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Frames queued now (a snapshot).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a push would be refused: lets producers skip building a
    /// frame that would only be dropped.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Moves up to `max` frames, oldest first, into `out`. Called by the
    /// one consumer.
    pub fn take(&self, max: usize, out: &mut Vec<Frame>) {
        let mut outbox = lock(&self.outbox);
        let mut n = drain_into(&mut outbox, max, out);
        if n < max {
            // The outbox is empty: everything pushed since the last swap
            // comes over at once, and the producers get the empty buffer
            // (with its allocation) back.
            std::mem::swap(&mut *lock(&self.inbox), &mut *outbox);
            n += drain_into(&mut outbox, max - n, out);
        }
        self.len.fetch_sub(n, Ordering::Relaxed);
    }

    /// Resolves after a producer's notification (possibly one given before
    /// the call): the consumer re-reads `len()` after every wake-up.
    pub async fn notified(&self) {
        self.wake.notified().await
    }
}

fn drain_into(from: &mut VecDeque<Frame>, max: usize, out: &mut Vec<Frame>) -> usize {
    let n = max.min(from.len());
    out.extend(from.drain(..n));
    n
}

fn lock(buffer: &Mutex<VecDeque<Frame>>) -> std::sync::MutexGuard<'_, VecDeque<Frame>> {
    // Nobody panics while holding these locks; recover anyway.
    buffer.lock().unwrap_or_else(|p| p.into_inner())
}

/// Cheap to clone; one per tier.
#[derive(Clone)]
pub struct Diagnostics {
    app_id: &'static str,
    queue: Option<Arc<FrameQueue>>,
    dropped: Arc<AtomicU64>,
}

impl Diagnostics {
    /// Frames are discarded (Kinesis is not configured).
    pub fn disabled(app_id: &'static str) -> Self {
        Diagnostics {
            app_id,
            queue: None,
            dropped: Arc::default(),
        }
    }

    /// Frames go to `queue`; `dropped` counts those the full queue refused.
    pub fn new(app_id: &'static str, queue: Arc<FrameQueue>, dropped: Arc<AtomicU64>) -> Self {
        Diagnostics {
            app_id,
            queue: Some(queue),
            dropped,
        }
    }

    pub fn app_id(&self) -> &'static str {
        self.app_id
    }

    /// One metric frame for one event, and its OpenTelemetry counter.
    pub fn metric(&self, name: &'static str) {
        super::otel::metrics().business_event(name);
        self.metric_frame(name);
    }

    /// The metric frame alone, without the OpenTelemetry twin: for a `fail`
    /// the client caused (see `http::public::count_outcome`).
    pub fn metric_frame(&self, name: &'static str) {
        let Some(queue) = &self.queue else {
            return;
        };
        if queue.is_full() {
            self.count_drop();
            return;
        }
        self.emit(Frame::Metrics(MetricFrame {
            app_id: self.app_id,
            name,
            count: 1,
            timestamp: now_ms(),
        }));
    }

    /// A log frame, only when the request carried a trace token. Pass
    /// `format_args!(..)` rather than `format!(..)`: the text is only
    /// built when the frame is going to be queued.
    pub fn log(&self, trace: Option<&TraceToken>, message: impl Display) {
        let (Some(trace), Some(queue)) = (trace, &self.queue) else {
            return;
        };
        if queue.is_full() {
            self.count_drop();
            return;
        }
        self.emit(Frame::Logs(LogFrame {
            app_id: self.app_id,
            trace_id: trace.as_str().to_owned(),
            message: message.to_string(),
            timestamp: now_ms(),
        }));
    }

    fn emit(&self, frame: Frame) {
        if let Some(queue) = &self.queue
            && queue.push(frame).is_err()
        {
            self.count_drop();
        }
    }

    /// One atomic add: `cinemo.kinesis.records{result=dropped}` (the
    /// `<env>-kinesis-dropped` alarm) is read from this count at export.
    fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_contract() {
        let log = Frame::Logs(LogFrame {
            app_id: "cinemo-public",
            trace_id: "t1".into(),
            message: "hi".into(),
            timestamp: 5,
        });
        assert_eq!(
            log.to_json(),
            r#"{"type":"logs","data":{"appId":"cinemo-public","traceId":"t1","message":"hi","timestamp":5}}"#
        );
        let metric = Frame::Metrics(MetricFrame {
            app_id: "cinemo-public",
            name: "readCustomer.success",
            count: 1,
            timestamp: 6,
        });
        assert_eq!(
            metric.to_json(),
            r#"{"type":"metrics","data":{"appId":"cinemo-public","name":"readCustomer.success","count":1,"timestamp":6}}"#
        );
    }

    #[test]
    fn frames_are_written_as_serde_would_write_them() {
        let texts = [
            "",
            "plain",
            r#"quote " and backslash \ and slash /"#,
            "control \u{0} \u{1f} \n \t \r \u{7f}",
            "non-ASCII: é ü 東京 🚀 \u{2028}",
        ];
        for (i, text) in texts.iter().enumerate() {
            let n = i as i64;
            let frames = [
                Frame::Logs(LogFrame {
                    app_id: "cinemo-public",
                    trace_id: text.to_string(),
                    message: format!("{text}{text}"),
                    timestamp: -n * 1_000_000_007,
                }),
                Frame::Metrics(MetricFrame {
                    app_id: "cinemo-internal",
                    name: "readCustomer.fail",
                    count: u64::MAX - i as u64,
                    timestamp: i64::MAX - n,
                }),
            ];
            for frame in frames {
                assert_eq!(frame.to_json(), serde_json::to_string(&frame).unwrap());
            }
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let queue = Arc::new(FrameQueue::new(2, 500));
        let dropped = Arc::new(AtomicU64::new(0));
        let d = Diagnostics::new("cinemo-public", queue.clone(), dropped.clone());
        let token = TraceToken::parse("t1").unwrap();
        d.metric("a");
        d.log(None, "not traced");
        d.log(Some(&token), format_args!("traced {}", 1));
        d.metric("b");
        d.log(Some(&token), "no room");
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        let mut out = Vec::new();
        queue.take(10, &mut out);
        assert!(queue.is_empty());
        assert!(matches!(
            &out[..],
            [
                Frame::Metrics(MetricFrame { name: "a", .. }),
                Frame::Logs(LogFrame { message, .. }),
            ] if message == "traced 1"
        ));
    }

    fn metric_frame(count: u64) -> Frame {
        Frame::Metrics(MetricFrame {
            app_id: "cinemo-public",
            name: "a",
            count,
            timestamp: 0,
        })
    }

    fn counts(frames: &[Frame]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Metrics(m) => m.count,
                Frame::Logs(_) => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn frames_come_out_in_order_across_swaps_and_the_bound_counts_both_buffers() {
        let queue = FrameQueue::new(5, 500);
        for i in 0..5 {
            queue.push(metric_frame(i)).unwrap();
        }
        assert!(queue.push(metric_frame(99)).is_err(), "full");
        let mut out = Vec::new();
        // Takes one; the other four now wait in the consumer's buffer and
        // still count against the capacity.
        queue.take(1, &mut out);
        assert_eq!(queue.len(), 4);
        queue.push(metric_frame(5)).unwrap();
        assert!(queue.push(metric_frame(99)).is_err(), "full again");
        // Draws the consumer's buffer dry, then swaps in what was pushed.
        queue.take(3, &mut out);
        queue.take(10, &mut out);
        assert_eq!(counts(&out), [0, 1, 2, 3, 4, 5]);
        assert!(queue.is_empty());
        // A take larger than the consumer's buffer reaches the producers' one.
        for i in 6..9 {
            queue.push(metric_frame(i)).unwrap();
        }
        out.clear();
        queue.take(1, &mut out);
        queue.push(metric_frame(9)).unwrap();
        queue.take(usize::MAX, &mut out);
        assert_eq!(counts(&out), [6, 7, 8, 9]);
        assert!(queue.is_empty());
    }

    #[test]
    fn concurrent_producers_never_overfill_and_lose_nothing() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 20_000;
        let queue = Arc::new(FrameQueue::new(64, 16));
        let refused = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (queue, refused) = (queue.clone(), refused.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        if queue.push(metric_frame(p * EACH + i)).is_err() {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut taken = Vec::new();
        let mut batch = Vec::new();
        while producers.iter().any(|p| !p.is_finished()) || !queue.is_empty() {
            assert!(
                queue.len() <= queue.capacity(),
                "overfilled: {}",
                queue.len()
            );
            queue.take(7, &mut batch);
            taken.extend(counts(&batch));
            batch.clear();
        }
        for p in producers {
            p.join().unwrap();
        }
        let refused = refused.load(Ordering::Relaxed);
        assert_eq!(taken.len() as u64 + refused, PRODUCERS * EACH);
        // Each producer's frames come out in the order it pushed them.
        for p in 0..PRODUCERS {
            let mine: Vec<u64> = taken.iter().copied().filter(|c| c / EACH == p).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} reordered"
            );
        }
    }

    #[test]
    fn the_queue_wakes_its_consumer_when_it_stops_being_empty_and_at_a_batch() {
        let queue = FrameQueue::new(100, 3);
        let frame = || {
            Frame::Metrics(MetricFrame {
                app_id: "cinemo-public",
                name: "a",
                count: 1,
                timestamp: 0,
            })
        };
        // Ready at once only when a notification is waiting.
        let woken = |q: &FrameQueue| futures_util::FutureExt::now_or_never(q.notified()).is_some();
        assert!(!woken(&queue), "nothing queued yet");
        queue.push(frame()).unwrap();
        assert!(woken(&queue), "first frame");
        queue.push(frame()).unwrap();
        assert!(!woken(&queue), "second frame: no wake-up");
        queue.push(frame()).unwrap();
        assert!(woken(&queue), "a whole batch");
        let mut out = Vec::new();
        queue.take(2, &mut out);
        assert_eq!((out.len(), queue.len()), (2, 1));
        // A queue smaller than a batch wakes its consumer when full.
        assert_eq!(FrameQueue::new(2, 500).batch(), 2);
    }
}
