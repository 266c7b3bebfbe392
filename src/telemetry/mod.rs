//! Logs, diagnostics frames and (later) metrics and traces.

pub mod diagnostics;
pub mod logging;
pub mod names;

pub use diagnostics::{Diagnostics, Frame};
