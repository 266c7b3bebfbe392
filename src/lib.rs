//! cinemo: Company XYZ's public customers API and internal cache API in one
//! binary. `main.rs` parses the command line and hands over to this library.

pub mod build_info;
pub mod cli;
pub mod diagnostics_reader;
pub mod domain;
pub mod http;
pub mod internal_api;
pub mod internal_client;
pub mod notify;
pub mod settings;
pub mod smoke;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
