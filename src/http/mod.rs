//! The two HTTP surfaces. Each tier has its own handlers module and shares
//! the liveness/version routes and the error type.

pub mod batch;
pub mod common;
pub mod error;
pub mod guards;
pub mod internal;
pub mod list;
pub mod openapi;
pub mod public;
pub mod rate_limit;
pub mod response;
pub mod routes;
pub mod schemas;
pub mod telemetry;
pub mod tiers;

pub use error::ApiError;
pub use response::{JSON, TEXT, json, options, text};
