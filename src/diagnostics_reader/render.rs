//! How frames look on a terminal: a trace as lines (time, tier, message),
//! the counters as a table per minute. Times are UTC.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::frame::{LogFrame, Operation, Outcome};

/// 9999-12-31T23:59:59Z and later cannot be written as RFC 3339.
const LAST_WRITABLE_MS: i64 = 253_402_300_800_000;

/// `2026-11-01T17:03:12.345Z`; a timestamp no calendar holds stays a number.
pub fn time(ms: i64) -> String {
    if (0..LAST_WRITABLE_MS).contains(&ms) {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
    } else {
        ms.to_string()
    }
}

/// `2026-11-01T17:03Z`, the minute starting at `minute_ms`.
pub fn minute(minute_ms: i64) -> String {
    let mut text = time(minute_ms);
    // 2026-11-01T17:03:00.000Z
    if text.len() == 24 && text.ends_with('Z') {
        text.truncate(16);
        text.push('Z');
    }
    text
}

/// The start of the minute holding `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000) * 60_000
}

/// One frame of a trace: `<time>  <appId>  <message>`.
pub fn trace_line(frame: &LogFrame) -> String {
    format!(
        "{}  {:<15}  {}",
        time(frame.timestamp),
        printable(&frame.app_id),
        printable(&frame.message)
    )
}

/// The text with control characters written as escapes, so one frame is
/// one line and no message can move the cursor or recolour the terminal.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Counters of one operation in one minute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
}

/// The six counters summed per minute.
#[derive(Debug, Default)]
pub struct MinuteTable {
    minutes: BTreeMap<i64, [Counts; 2]>,
}

impl MinuteTable {
    pub fn add(&mut self, timestamp: i64, operation: Operation, outcome: Outcome, count: u64) {
        let row = &mut self.minutes.entry(minute_of(timestamp)).or_default()[operation as usize];
        let cell = match outcome {
            Outcome::Attempt => &mut row.attempts,
            Outcome::Success => &mut row.successes,
            Outcome::Fail => &mut row.failures,
        };
        *cell = cell.saturating_add(count);
    }

    pub fn get(&self, minute_ms: i64) -> [Counts; 2] {
        self.minutes.get(&minute_ms).copied().unwrap_or_default()
    }

    pub fn header() -> String {
        format!(
            "{:<17}  {:<14}  {:>8}  {:>9}  {:>8}",
            "MINUTE", "OPERATION", "ATTEMPTS", "SUCCESSES", "FAILURES"
        )
    }

    /// The minute's two rows (zeros when nothing was counted), with an
    /// optional note at the end (`partial`, `revised`).
    pub fn rows(&self, minute_ms: i64, note: &str) -> Vec<String> {
        let counts = self.get(minute_ms);
        Operation::ALL
            .iter()
            .map(|op| {
                let c = counts[*op as usize];
                let mut row = format!(
                    "{:<17}  {:<14}  {:>8}  {:>9}  {:>8}",
                    minute(minute_ms),
                    op.name(),
                    c.attempts,
                    c.successes,
                    c.failures
                );
                if !note.is_empty() {
                    row.push_str("  ");
                    row.push_str(note);
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_minutes_in_utc() {
        assert_eq!(time(1_793_552_592_345), "2026-11-01T17:03:12.345Z");
        assert_eq!(minute(minute_of(1_793_552_592_345)), "2026-11-01T17:03Z");
        assert_eq!(minute_of(-1), -60_000);
        assert_eq!(time(-5), "-5");
        assert_eq!(time(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn a_trace_frame_is_one_line() {
        let frame = LogFrame {
            app_id: "cinemo-public".into(),
            trace_id: "t".into(),
            message: "storage failed: a\nb \u{1b}[31mred".into(),
            timestamp: 1_793_552_592_345,
        };
        assert_eq!(
            trace_line(&frame),
            "2026-11-01T17:03:12.345Z  cinemo-public    storage failed: a\\nb \\u{1b}[31mred"
        );
    }

    #[test]
    fn the_table_sums_per_minute_and_operation() {
        let mut table = MinuteTable::default();
        let t = 1_793_552_580_000;
        table.add(t, Operation::CreateCustomer, Outcome::Attempt, 1);
        table.add(t + 59_999, Operation::CreateCustomer, Outcome::Attempt, 1);
        table.add(t + 5, Operation::CreateCustomer, Outcome::Fail, 1);
        table.add(t + 60_000, Operation::ReadCustomer, Outcome::Success, 3);
        assert_eq!(
            table.rows(t, ""),
            [
                "2026-11-01T17:03Z  createCustomer         2          0         1",
                "2026-11-01T17:03Z  readCustomer           0          0         0",
            ]
        );
        assert_eq!(
            table.rows(t + 60_000, "partial")[1],
            "2026-11-01T17:04Z  readCustomer           0          3         0  partial"
        );
        assert_eq!(
            MinuteTable::header(),
            "MINUTE             OPERATION       ATTEMPTS  SUCCESSES  FAILURES"
        );
    }
}
