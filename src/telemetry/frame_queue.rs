//! The bounded queue between request handlers and the Kinesis sink.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::frame::Frame;

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::telemetry::frame::MetricFrame;

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
