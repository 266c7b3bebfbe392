//! Values parsed at the edge. Handlers and stores only ever see these types,
//! never raw strings from the wire.

pub mod clock;
mod customer_name;
mod doc_id;
mod document;
mod idempotency_key;
mod trace_token;

pub use customer_name::CustomerName;
pub use doc_id::DocId;
pub use document::{Document, DocumentError};
pub use idempotency_key::{IdempotencyKey, fingerprint, is_fingerprint};
pub use trace_token::TraceToken;
