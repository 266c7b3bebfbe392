//! What is printed, and when: a trace's frames, or the table of counters.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::frame::{Frame, LogFrame, counter};
use super::order::{Key, in_order};
use super::render::{self, MinuteTable};

/// A record that is one of the contract's frames.
pub struct Parsed {
    pub key: Key,
    pub frame: Frame,
    /// The record's data as written.
    pub data: Vec<u8>,
}

/// Standard output, one whole line at a time.
pub struct Out(Box<dyn Write>);

impl Out {
    pub fn stdout() -> Out {
        Out(Box::new(io::stdout()))
    }

    pub fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.0, "{text}")?;
        self.0.flush()
    }
}

pub trait View {
    /// Takes a frame read from the stream; true when it is one to print
    /// soon (a live poll then settles before printing, see `order`).
    fn take(&mut self, parsed: Parsed) -> bool;
    /// Prints what is ready: the frames taken so far, in order, or the
    /// minutes that are over.
    fn print(&mut self, now_ms: i64, out: &mut Out) -> io::Result<()>;
    /// The read ends (or Ctrl-C stops a follow): prints what is left.
    fn finish(&mut self, now_ms: i64, out: &mut Out) -> io::Result<()>;
    /// A last word on stderr after a read that ends.
    fn summary(&self) -> Option<String>;
}

/// `--trace TOKEN`: the token's log frames, oldest first.
pub struct TraceView {
    token: String,
    json: bool,
    since_ms: Option<i64>,
    pending: Vec<(Key, (LogFrame, Vec<u8>))>,
    shown: usize,
}

impl TraceView {
    pub fn new(token: String, json: bool, since_ms: Option<i64>) -> TraceView {
        TraceView {
            token,
            json,
            since_ms,
            pending: Vec::new(),
            shown: 0,
        }
    }
}

impl View for TraceView {
    fn take(&mut self, parsed: Parsed) -> bool {
        match parsed.frame {
            Frame::Logs(frame)
                if frame.trace_id == self.token
                    && self.since_ms.is_none_or(|since| frame.timestamp >= since) =>
            {
                self.pending.push((parsed.key, (frame, parsed.data)));
                true
            }
            _ => false,
        }
    }

    fn print(&mut self, _now_ms: i64, out: &mut Out) -> io::Result<()> {
        in_order(&mut self.pending);
        for (_, (frame, data)) in self.pending.drain(..) {
            if self.json {
                // The record's data is the frame's JSON, on one line.
                out.line(&String::from_utf8_lossy(&data))?;
            } else {
                out.line(&render::trace_line(&frame))?;
            }
            self.shown += 1;
        }
        Ok(())
    }

    fn finish(&mut self, now_ms: i64, out: &mut Out) -> io::Result<()> {
        self.print(now_ms, out)
    }

    fn summary(&self) -> Option<String> {
        let since = self
            .since_ms
            .map(|ms| format!(" since {}", render::time(ms)))
            .unwrap_or_default();
        Some(match self.shown {
            0 => format!(
                "no frames of trace {}{since} (frames reach the stream about a second after the request; --follow waits for them)",
                self.token
            ),
            1 => format!("1 frame of trace {}{since}", self.token),
            n => format!("{n} frames of trace {}{since}", self.token),
        })
    }
}

/// How long after a minute ends its rows are printed while following:
/// metric frames reach the stream within the sink's flush interval (1 s)
/// and are read within about 0.7 s; a later frame reprints the minute as
/// `revised`.
const MINUTE_GRACE_MS: i64 = 5_000;
const MINUTE_MS: i64 = 60_000;

/// `--metrics`: the six counters per minute.
pub struct MetricsView {
    table: MinuteTable,
    since_ms: Option<i64>,
    first_minute: i64,
    /// The first minute is counted from part-way through.
    first_partial: bool,
    header_printed: bool,
    /// Minutes before this one have been printed.
    next_minute: i64,
    revised: BTreeSet<i64>,
}

impl MetricsView {
    /// Counts from `from_ms` (the `--since` time, or the start of a follow
    /// from now); frames before `since_ms` are left out.
    pub fn new(from_ms: i64, since_ms: Option<i64>) -> MetricsView {
        let first_minute = render::minute_of(from_ms);
        MetricsView {
            table: MinuteTable::default(),
            since_ms,
            first_minute,
            first_partial: from_ms != first_minute,
            header_printed: false,
            next_minute: first_minute,
            revised: BTreeSet::new(),
        }
    }

    /// The minute's rows; `note` is `partial` (a minute still going on) or
    /// `revised` (a minute printed before, with frames that came late).
    fn print_minute(&mut self, minute: i64, note: &str, out: &mut Out) -> io::Result<()> {
        if !self.header_printed {
            out.line(&MinuteTable::header())?;
            self.header_printed = true;
        }
        let counted_from_part_way = minute == self.first_minute && self.first_partial;
        let note = match (counted_from_part_way, note) {
            (true, "") | (true, "partial") => "partial".to_owned(),
            (true, other) => format!("partial, {other}"),
            (false, other) => other.to_owned(),
        };
        for row in self.table.rows(minute, &note) {
            out.line(&row)?;
        }
        Ok(())
    }
}

impl View for MetricsView {
    fn take(&mut self, parsed: Parsed) -> bool {
        let Frame::Metrics(frame) = parsed.frame else {
            return false;
        };
        let Some((operation, outcome)) = counter(&frame.name) else {
            return false;
        };
        let minute = render::minute_of(frame.timestamp);
        if minute < self.first_minute || self.since_ms.is_some_and(|s| frame.timestamp < s) {
            return false;
        }
        self.table
            .add(frame.timestamp, operation, outcome, frame.count);
        if minute < self.next_minute {
            self.revised.insert(minute);
        }
        // Minutes are printed when they are over, not frame by frame.
        false
    }

    fn print(&mut self, now_ms: i64, out: &mut Out) -> io::Result<()> {
        while self.next_minute + MINUTE_MS + MINUTE_GRACE_MS <= now_ms {
            self.print_minute(self.next_minute, "", out)?;
            self.next_minute += MINUTE_MS;
        }
        for minute in std::mem::take(&mut self.revised) {
            self.print_minute(minute, "revised", out)?;
        }
        Ok(())
    }

    fn finish(&mut self, now_ms: i64, out: &mut Out) -> io::Result<()> {
        self.print(now_ms, out)?;
        let current = render::minute_of(now_ms);
        while self.next_minute <= current {
            let note = if self.next_minute == current {
                "partial"
            } else {
                ""
            };
            self.print_minute(self.next_minute, note, out)?;
            self.next_minute += MINUTE_MS;
        }
        if !self.header_printed {
            out.line(&MinuteTable::header())?;
            self.header_printed = true;
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::diagnostics_reader::frame::MetricFrame;

    /// An `Out` whose lines the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Rc<RefCell<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn out(&self) -> Out {
            Out(Box::new(self.clone()))
        }
        /// The lines written since the last call.
        fn take(&self) -> Vec<String> {
            let text = String::from_utf8(std::mem::take(&mut *self.0.borrow_mut())).unwrap();
            text.lines().map(str::to_owned).collect()
        }
    }

    const T0: i64 = 1_793_552_580_000; // 2026-11-01T17:03:00Z

    fn metric(name: &str, timestamp: i64) -> Parsed {
        Parsed {
            key: Key {
                timestamp,
                arrival_ms: timestamp,
                receipt: 0,
            },
            frame: Frame::Metrics(MetricFrame {
                app_id: "cinemo-public".into(),
                name: name.into(),
                count: 1,
                timestamp,
            }),
            data: Vec::new(),
        }
    }

    fn log(trace: &str, message: &str, timestamp: i64, receipt: u64) -> Parsed {
        Parsed {
            key: Key {
                timestamp,
                arrival_ms: 0,
                receipt,
            },
            frame: Frame::Logs(LogFrame {
                app_id: "cinemo-public".into(),
                trace_id: trace.into(),
                message: message.into(),
                timestamp,
            }),
            data: Vec::new(),
        }
    }

    #[test]
    fn a_trace_prints_its_own_frames_oldest_first() {
        let captured = Captured::default();
        let mut out = captured.out();
        let mut view = TraceView::new("t".into(), false, Some(T0));
        assert!(view.take(log("t", "second", T0 + 2, 1)));
        assert!(!view.take(log("other", "not mine", T0 + 1, 2)));
        assert!(!view.take(log("t", "before --since", T0 - 1, 3)));
        assert!(view.take(log("t", "first", T0 + 1, 4)));
        assert!(!view.take(metric("readCustomer.attempt", T0)));
        view.finish(T0 + 5, &mut out).unwrap();
        assert_eq!(
            captured.take(),
            [
                "2026-11-01T17:03:00.001Z  cinemo-public    first",
                "2026-11-01T17:03:00.002Z  cinemo-public    second",
            ]
        );
        assert_eq!(
            view.summary().unwrap(),
            "2 frames of trace t since 2026-11-01T17:03:00.000Z"
        );
    }

    #[test]
    fn following_prints_each_minute_once_it_is_over_and_revises_late_ones() {
        let captured = Captured::default();
        let mut out = captured.out();
        // Following from 17:03:20: the first minute is partial.
        let mut view = MetricsView::new(T0 + 20_000, None);
        view.take(metric("createCustomer.attempt", T0 + 21_000));
        view.take(metric("createCustomer.success", T0 + 21_000));
        view.take(metric("readCustomer.attempt", T0 + 61_000));
        view.take(metric("readCustomer.fail", T0 + 61_000));
        // Not over yet (17:04:04 is within the grace after 17:04:00).
        view.print(T0 + 64_000, &mut out).unwrap();
        assert_eq!(captured.take(), Vec::<String>::new());
        view.print(T0 + 65_000, &mut out).unwrap();
        assert_eq!(
            captured.take(),
            [
                "MINUTE             OPERATION       ATTEMPTS  SUCCESSES  FAILURES",
                "2026-11-01T17:03Z  createCustomer         1          1         0  partial",
                "2026-11-01T17:03Z  readCustomer           0          0         0  partial",
            ]
        );
        // A frame of 17:03 that comes late reprints the minute.
        view.take(metric("readCustomer.attempt", T0 + 30_000));
        view.print(T0 + 66_000, &mut out).unwrap();
        assert_eq!(
            captured.take(),
            [
                "2026-11-01T17:03Z  createCustomer         1          1         0  partial, revised",
                "2026-11-01T17:03Z  readCustomer           1          0         0  partial, revised",
            ]
        );
        // Ctrl-C at 17:05:10: 17:04 is over, 17:05 is partial.
        view.finish(T0 + 130_000, &mut out).unwrap();
        assert_eq!(
            captured.take(),
            [
                "2026-11-01T17:04Z  createCustomer         0          0         0",
                "2026-11-01T17:04Z  readCustomer           1          0         1",
                "2026-11-01T17:05Z  createCustomer         0          0         0  partial",
                "2026-11-01T17:05Z  readCustomer           0          0         0  partial",
            ]
        );
    }

    #[test]
    fn a_read_that_ends_prints_every_minute_of_the_window() {
        let captured = Captured::default();
        let mut out = captured.out();
        let mut view = MetricsView::new(T0, Some(T0));
        view.take(metric("createCustomer.attempt", T0 - 1));
        view.take(metric("createCustomer.fail", T0 + 1));
        view.take(metric("somethingElse", T0 + 1));
        view.print(T0 + 70_000, &mut out).unwrap();
        view.finish(T0 + 70_000, &mut out).unwrap();
        assert_eq!(
            captured.take(),
            [
                "MINUTE             OPERATION       ATTEMPTS  SUCCESSES  FAILURES",
                "2026-11-01T17:03Z  createCustomer         0          0         1",
                "2026-11-01T17:03Z  readCustomer           0          0         0",
                "2026-11-01T17:04Z  createCustomer         0          0         0  partial",
                "2026-11-01T17:04Z  readCustomer           0          0         0  partial",
            ]
        );
    }
}
