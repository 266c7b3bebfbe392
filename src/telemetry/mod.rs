//! Logs, diagnostics frames (Kinesis), metrics and traces (OpenTelemetry).
//!
//! Dependencies run one way: `frame` <- `frame_queue` <- `diagnostics` <-
//! `kinesis_sink`, and everything that measures records into
//! `otel::instruments`, which knows none of them.

pub mod diagnostics;
pub mod frame;
pub mod frame_queue;
pub mod kinesis_client;
pub mod kinesis_sink;
pub mod logging;
pub mod names;
pub mod otel;
pub mod priority;
pub mod trace_context;

pub use diagnostics::Diagnostics;
pub use frame::Frame;
