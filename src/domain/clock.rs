//! The one clock for business timestamps: a customer's `dateCreated`, a
//! stored row's `created_at` and a diagnostics frame's `timestamp`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the system clock is set before
/// it, which no host of ours is).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_milliseconds_since_the_epoch() {
        // Between the years 2020 and 2100 in milliseconds, not seconds or micros.
        let now = super::now_ms();
        assert!(
            (1_577_836_800_000..4_102_444_800_000).contains(&now),
            "{now}"
        );
    }
}
