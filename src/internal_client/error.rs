//! What a call to the internal tier can end in, decoded once from the
//! answer (`InternalError::from_answer`) so callers match on meanings, not
//! status numbers.

use hyper::StatusCode;

use crate::internal_api::Failure;

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("internal tier unreachable: {0}")]
    Unreachable(String),
    #[error("internal tier did not answer in time")]
    Timeout,
    /// One of the internal API's own failures (`internal_api::Failure`).
    #[error("internal tier answered {} {}", .0.status(), .0.text())]
    Refused(Failure),
    /// A status the internal API does not give for this call.
    #[error("internal tier answered {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
    #[error("internal tier sent an unreadable answer: {0}")]
    BadResponse(String),
    /// The request itself could not be built; a bug, never the peer's doing.
    #[error("cannot build the request to the internal tier: {0}")]
    Request(String),
}

impl InternalError {
    /// An error of the exchange itself (after connecting).
    pub(super) fn from_hyper(e: &hyper::Error) -> Self {
        if e.is_parse() || e.is_parse_status() {
            InternalError::BadResponse(error_chain(e))
        } else {
            InternalError::Unreachable(error_chain(e))
        }
    }

    /// What an answer that is not the call's success means.
    pub(super) fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        match Failure::from_status(status.as_u16()) {
            Some(failure) => InternalError::Refused(failure),
            None => {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                InternalError::Unexpected { status, body: text }
            }
        }
    }
}

/// An error and its sources, one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The connection failed under a request (reset, closed, a protocol
/// error), as opposed to an answer that could not be read.
pub(super) fn broken(e: &hyper::Error) -> bool {
    !(e.is_parse() || e.is_parse_status() || e.is_user())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_to_the_failure_they_mean_or_stay_unexpected() {
        for (status, failure) in [
            (404, Failure::NotFound),
            (504, Failure::StorageUnavailable),
            (503, Failure::Unavailable),
            (422, Failure::KeyReused),
            (429, Failure::BatchesBusy),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(
                InternalError::from_answer(status, b""),
                InternalError::Refused(f) if f == failure
            ));
        }
        let long = vec![b'x'; 500];
        match InternalError::from_answer(StatusCode::INTERNAL_SERVER_ERROR, &long) {
            InternalError::Unexpected { status, body } => {
                assert_eq!(status, 500);
                assert_eq!(body.len(), 200, "the body is cut for the logs");
            }
            other => panic!("{other:?}"),
        }
    }
}
