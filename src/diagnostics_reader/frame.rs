//! A record of the diagnostics stream read back as the contract's frame.
//! The sink (src/telemetry/kinesis_sink/, frames from
//! src/telemetry/frame.rs) writes exactly one frame, as JSON, per record,
//! under a random partition key: a trace's frames are spread over every
//! shard, and only their timestamps order them.

use serde::Deserialize;

use crate::telemetry::names;

/// What `src/telemetry/diagnostics.rs` writes, read leniently: fields
/// added later are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum Frame {
    Logs(LogFrame),
    Metrics(MetricFrame),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFrame {
    pub app_id: String,
    pub trace_id: String,
    pub message: String,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFrame {
    pub app_id: String,
    pub name: String,
    pub count: u64,
    pub timestamp: i64,
}

impl Frame {
    /// None for anything that is not one of the contract's frames (another
    /// producer's record, a truncated one).
    pub fn parse(data: &[u8]) -> Option<Frame> {
        serde_json::from_slice(data).ok()
    }

    /// When the tier wrote it, in epoch milliseconds (the tier's clock).
    pub fn timestamp(&self) -> i64 {
        match self {
            Frame::Logs(f) => f.timestamp,
            Frame::Metrics(f) => f.timestamp,
        }
    }
}

/// The two operations the six counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    CreateCustomer,
    ReadCustomer,
}

impl Operation {
    pub const ALL: [Operation; 2] = [Operation::CreateCustomer, Operation::ReadCustomer];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateCustomer => "createCustomer",
            Operation::ReadCustomer => "readCustomer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Attempt,
    Success,
    Fail,
}

/// Which counter a metric frame's `name` is, if it is one of the six.
pub fn counter(name: &str) -> Option<(Operation, Outcome)> {
    use Operation::*;
    use Outcome::*;
    Some(match name {
        names::CREATE_CUSTOMER_ATTEMPT => (CreateCustomer, Attempt),
        names::CREATE_CUSTOMER_SUCCESS => (CreateCustomer, Success),
        names::CREATE_CUSTOMER_FAIL => (CreateCustomer, Fail),
        names::READ_CUSTOMER_ATTEMPT => (ReadCustomer, Attempt),
        names::READ_CUSTOMER_SUCCESS => (ReadCustomer, Success),
        names::READ_CUSTOMER_FAIL => (ReadCustomer, Fail),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::frame as written;

    fn json(frame: &written::Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.write_json(&mut out);
        out
    }

    #[test]
    fn reads_back_what_the_sink_writes() {
        let log = written::Frame::Logs(written::LogFrame {
            app_id: names::APP_ID_INTERNAL,
            trace_id: "t-1".into(),
            message: "stored 6b0421551b4a0caf7001d73f".into(),
            timestamp: 1_795_434_272_123,
        });
        assert_eq!(
            Frame::parse(&json(&log)),
            Some(Frame::Logs(LogFrame {
                app_id: "cinemo-internal".into(),
                trace_id: "t-1".into(),
                message: "stored 6b0421551b4a0caf7001d73f".into(),
                timestamp: 1_795_434_272_123,
            }))
        );
        let metric = written::Frame::Metrics(written::MetricFrame {
            app_id: names::APP_ID_PUBLIC,
            name: names::READ_CUSTOMER_FAIL,
            count: 1,
            timestamp: 7,
        });
        let read = Frame::parse(&json(&metric)).unwrap();
        assert_eq!(read.timestamp(), 7);
        let Frame::Metrics(m) = read else {
            panic!("not a metric frame")
        };
        assert_eq!(
            counter(&m.name),
            Some((Operation::ReadCustomer, Outcome::Fail))
        );
    }

    #[test]
    fn other_records_are_not_frames() {
        for data in [
            &b"not json"[..],
            br#"{"type":"logs","data":{"appId":"a"}}"#,
            br#"{"type":"events","data":{}}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(
                Frame::parse(data),
                None,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        // Key order and extra fields do not matter.
        assert!(
            Frame::parse(
                br#"{"data":{"timestamp":1,"name":"x","count":2,"appId":"a","extra":true},"type":"metrics"}"#
            )
            .is_some()
        );
        assert_eq!(counter("createCustomer.retry"), None);
    }
}
