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
//! everything: it polls every shard once a second (the pace the API
//! reference recommends for GetRecords) and prints each poll's frames in
//! order. When a poll brings frames it polls once more 200 ms later (the
//! per-shard limit) before printing: a batch of records that reached the
//! stream while the shards were being polled is then printed whole and in
//! order. That bounds the delay to about 1.2 s after a frame reaches the
//! stream. A wider window would be needed to also order frames that two
//! hosts' sinks sent up to `kinesis.flush_interval_ms` (1 s) apart, and it
//! would double that delay; such a frame is printed when it arrives, after
//! frames with later timestamps, and its timestamp shows it.

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
pub const FOLLOW_POLL: Duration = Duration::from_secs(1);
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
