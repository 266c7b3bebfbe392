//! Telemetry suites: the Kinesis sink against kinesalite and fakes, and
//! OpenTelemetry export against an OTLP/HTTP receiver run by the test. They
//! drive the real binary.

mod common;
#[path = "telemetry/export_log.rs"]
mod export_log;
#[path = "telemetry/harness.rs"]
mod harness;
#[path = "telemetry/kinesis.rs"]
mod kinesis;
#[path = "telemetry/otlp.rs"]
mod otlp;
