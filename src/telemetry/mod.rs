//! Logs, diagnostics frames (Kinesis), metrics and traces (OpenTelemetry).

pub mod diagnostics;
pub mod kinesis_sink;
pub mod logging;
pub mod names;
pub mod otel;

pub use diagnostics::{Diagnostics, Frame};
