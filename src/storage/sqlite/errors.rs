//! What SQLite's errors mean to cinemo, decided in one place for the
//! readers and the pool alike.

use rusqlite::ErrorCode::{
    CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, OperationInterrupted, SystemIoFailure,
};
use rusqlite::ffi;

use crate::storage::StoreError;

/// The file is locked (or its WAL index is being rebuilt): waiting may
/// help. SQLITE_PROTOCOL is the WAL retry loop giving up.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    let protocol = e
        .sqlite_error()
        .is_some_and(|e| e.extended_code & 0xff == ffi::SQLITE_PROTOCOL);
    protocol || matches!(e.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked))
}

/// A taken id; the caller names it (`StoreError::Duplicate`, or a batch's
/// collision).
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|e| {
        e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
    })
}

/// A locked, unreachable or full file, or an operation cut at its
/// deadline, is a 504 that a retry may cure; anything else is a fault.
pub fn classify(e: rusqlite::Error) -> StoreError {
    let unavailable = is_busy(&e)
        || matches!(
            e.sqlite_error_code(),
            Some(CannotOpen | SystemIoFailure | DiskFull | OperationInterrupted)
        );
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(e.into())
    }
}
