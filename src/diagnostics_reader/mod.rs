//! `cinemo diagnostics`: reads back what the Kinesis sink wrote to the
//! diagnostics stream, for the duty manager following a customer's trace
//! token or watching the six counters (docs/runbook.md, docs/telemetry.md).
//!
//! - `shards`: the stream's shards and their lineage after a reshard;
//! - `shard_reader`: one shard's iterator, paced reads, backoff on
//!   throttling and lost connections, expired iterators;
//! - `stream_reader`: every shard together, up to the tip or live;
//! - `errors`: SDK errors turned into one line, or into a retry;
//! - `frame` and `since`: what a record and `--since` mean;
//! - `order`, `output` and `render`: frames in time order, printed as
//!   lines, JSON or the per-minute table;
//! - `command`: the subcommand itself, its arguments and Ctrl-C.

mod command;
mod errors;
mod frame;
mod order;
mod output;
mod render;
mod shard_reader;
mod shards;
mod since;
mod stream_reader;

pub use command::{DiagnosticsArgs, run};
