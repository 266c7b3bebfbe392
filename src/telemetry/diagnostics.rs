//! The handle request handlers use to emit the contract's diagnostics
//! frames. Emitting never blocks and never fails a request: frames go into
//! a bounded queue (`FrameQueue`) that the Kinesis sink drains; when the
//! queue is full the frame is dropped and counted.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::frame::{Frame, LogFrame, MetricFrame};
use super::frame_queue::FrameQueue;
use super::otel::instruments;
use crate::domain::TraceToken;
use crate::domain::clock::now_ms;

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

    /// One metric frame for one event, and its OpenTelemetry counter.
    pub fn metric(&self, name: &'static str) {
        instruments::metrics().business_event(name);
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
}
