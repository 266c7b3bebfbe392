//! `cinemo diagnostics` reading back, from kinesalite, the frames the real
//! binary wrote: a trace in order from every shard, `--since`, `--follow`,
//! a reshard during the read, throttling and expired iterators, the
//! counters per minute, and the one-line errors.

mod common;
#[path = "diagnostics/errors.rs"]
mod errors;
#[path = "diagnostics/faults.rs"]
mod faults;
#[path = "diagnostics/follow.rs"]
mod follow;
#[path = "diagnostics/harness.rs"]
mod harness;
#[path = "diagnostics/metrics.rs"]
mod metrics;
#[path = "diagnostics/reshard.rs"]
mod reshard;
#[path = "diagnostics/trace.rs"]
mod trace;
