//! The contract's diagnostics frames (metric and X-Trace log frames) and
//! their JSON.

use serde::Serialize;

/// One Kinesis record's data, exactly as in the wire contract
/// (`../shared/spec/CONTRACT.md`, docs/telemetry.md).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(frame: &Frame) -> String {
        let mut out = Vec::new();
        frame.write_json(&mut out);
        String::from_utf8(out).expect("frames are UTF-8")
    }

    #[test]
    fn frames_match_the_contract() {
        let log = Frame::Logs(LogFrame {
            app_id: "cinemo-public",
            trace_id: "t1".into(),
            message: "hi".into(),
            timestamp: 5,
        });
        assert_eq!(
            to_json(&log),
            r#"{"type":"logs","data":{"appId":"cinemo-public","traceId":"t1","message":"hi","timestamp":5}}"#
        );
        let metric = Frame::Metrics(MetricFrame {
            app_id: "cinemo-public",
            name: "readCustomer.success",
            count: 1,
            timestamp: 6,
        });
        assert_eq!(
            to_json(&metric),
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
                assert_eq!(to_json(&frame), serde_json::to_string(&frame).unwrap());
            }
        }
    }
}
