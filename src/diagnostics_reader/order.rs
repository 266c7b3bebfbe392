//! In which order frames are printed, and when a live step prints.
//!
//! Frames are ordered by their own `timestamp` (when the tier wrote them),
//! oldest first. The sink spreads records over every shard with random
//! partition keys, and the frames of one request come from two tiers,
//! possibly two hosts, so neither a shard's order nor arrival order is the
//! order of events. Ties (the same millisecond) keep arrival order: the
//! records' `ApproximateArrivalTimestamp`, then the order they were read.
//!
//! A read that ends sorts everything it read. `--follow` cannot wait for
//! everything: it polls every shard twice a second and prints each poll's
//! frames in order. When a poll brings frames it polls once more 200 ms
//! later before printing: a batch of records that reached the stream while
//! the shards were being polled is then printed whole and in order. That
//! is at most three GetRecords calls per second per shard of the five the
//! API reference allows (shared with every other reader, and recommended
//! "to remain caught up"), and a frame shows within about 0.7 s of reaching
//! the stream: with the sink's 1 s `kinesis.flush_interval_ms`, within 2 s
//! of the request. A window wide enough to also order frames that two
//! hosts' sinks sent up to that flush interval apart would double the
//! delay; such a frame is printed when it arrives, after frames with later
//! timestamps, and its timestamp shows it.

use std::time::Duration;

/// The sort key of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub timestamp: i64,
    pub arrival_ms: i64,
    pub receipt: u64,
}

/// Sorts `items` by their key, oldest first.
pub fn in_order<T>(items: &mut [(Key, T)]) {
    items.sort_by_key(|(key, _)| *key);
}

/// Poll every shard this often while following.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// After a poll that brought frames, poll again this soon before printing.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The pace of `--follow`.
#[derive(Debug, Default)]
pub struct Cadence {
    settling: bool,
}

impl Cadence {
    /// After a poll: whether to print what has been gathered now, and when
    /// to poll next.
    pub fn after_poll(&mut self, brought_frames: bool) -> (bool, Duration) {
        if brought_frames && !self.settling {
            self.settling = true;
            (false, SETTLE)
        } else {
            self.settling = false;
            (true, FOLLOW_POLL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(timestamp: i64, arrival_ms: i64, receipt: u64) -> Key {
        Key {
            timestamp,
            arrival_ms,
            receipt,
        }
    }

    #[test]
    fn oldest_first_and_ties_in_arrival_order() {
        let mut items = vec![
            (key(20, 30, 1), "c"),
            (key(10, 31, 2), "b"),
            (key(10, 30, 4), "a2"),
            (key(10, 30, 3), "a1"),
            (key(5, 40, 5), "first"),
        ];
        in_order(&mut items);
        let order: Vec<_> = items.iter().map(|(_, v)| *v).collect();
        assert_eq!(order, ["first", "a1", "a2", "b", "c"]);
    }

    #[test]
    fn a_poll_with_frames_is_settled_before_printing() {
        let mut cadence = Cadence::default();
        assert_eq!(cadence.after_poll(false), (true, FOLLOW_POLL));
        assert_eq!(cadence.after_poll(true), (false, SETTLE));
        // The settling poll prints, whatever it brought.
        assert_eq!(cadence.after_poll(true), (true, FOLLOW_POLL));
        assert_eq!(cadence.after_poll(true), (false, SETTLE));
        assert_eq!(cadence.after_poll(false), (true, FOLLOW_POLL));
    }
}
