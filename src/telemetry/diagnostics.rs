//! The contract's diagnostics frames (metric and X-Trace log frames) and the
//! handle request handlers use to emit them. Emitting never blocks and never
//! fails a request: frames go into a bounded queue that a background sink
//! drains; when the queue is full the frame is dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

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
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Cheap to clone; one per tier.
#[derive(Clone)]
pub struct Diagnostics {
    app_id: &'static str,
    tx: Option<mpsc::Sender<Frame>>,
    dropped: Arc<AtomicU64>,
}

impl Diagnostics {
    /// Frames are discarded (Kinesis is not configured).
    pub fn disabled(app_id: &'static str) -> Self {
        Diagnostics {
            app_id,
            tx: None,
            dropped: Arc::default(),
        }
    }

    /// Frames go to `tx`; `dropped` counts those the full queue refused.
    pub fn new(app_id: &'static str, tx: mpsc::Sender<Frame>, dropped: Arc<AtomicU64>) -> Self {
        Diagnostics {
            app_id,
            tx: Some(tx),
            dropped,
        }
    }

    pub fn app_id(&self) -> &'static str {
        self.app_id
    }

    /// One metric frame for one event.
    pub fn metric(&self, name: &'static str) {
        self.emit(Frame::Metrics(MetricFrame {
            app_id: self.app_id,
            name,
            count: 1,
            timestamp: now_ms(),
        }));
    }

    /// A log frame, only when the request carried a trace token.
    pub fn log(&self, trace: Option<&TraceToken>, message: impl Into<String>) {
        if let Some(trace) = trace {
            self.emit(Frame::Logs(LogFrame {
                app_id: self.app_id,
                trace_id: trace.as_str().to_owned(),
                message: message.into(),
                timestamp: now_ms(),
            }));
        }
    }

    fn emit(&self, frame: Frame) {
        if let Some(tx) = &self.tx
            && tx.try_send(frame).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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
    fn a_full_queue_drops_and_counts() {
        let (tx, mut rx) = mpsc::channel(1);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = Diagnostics::new("cinemo-public", tx, dropped.clone());
        d.metric("a");
        d.metric("b");
        d.log(None, "not traced");
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert!(matches!(
            rx.try_recv(),
            Ok(Frame::Metrics(MetricFrame { name: "a", .. }))
        ));
    }
}
