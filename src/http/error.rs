use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};

use super::response::TEXT;
use crate::internal_api::Failure;

/// The one error type of both HTTP surfaces: a status and a short, stable
/// text for the client. Causes are logged where the error is made, never
/// sent to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header (429 answers).
    retry_after: Option<u64>,
}

impl ApiError {
    pub const fn new(status: StatusCode, message: &'static str) -> Self {
        ApiError {
            status,
            message: Cow::Borrowed(message),
            retry_after: None,
        }
    }

    /// A message built per request, e.g. naming the bad item of a batch.
    pub fn with_text(status: StatusCode, message: String) -> Self {
        ApiError {
            status,
            message: Cow::Owned(message),
            retry_after: None,
        }
    }

    /// One of the internal API's failures, with its status and text (the
    /// public API answers some of them with the same text).
    pub fn failure(failure: Failure) -> Self {
        // Every status in `internal_api::Failure` is a valid one (tested).
        let status = StatusCode::from_u16(failure.status())
            .expect("internal_api::Failure statuses are valid HTTP statuses");
        ApiError {
            status,
            message: Cow::Borrowed(failure.text()),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub const fn bad_request(message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub const fn not_found(message: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A bug or an unexpected failure: logs the cause, tells the client little.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed unexpectedly");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((CONTENT_TYPE, HeaderValue::from_static(TEXT)));
        if let Some(secs) = self.retry_after {
            response.insert_header((RETRY_AFTER, secs));
        }
        response.body(self.message.clone().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_api_failures_answer_with_their_status_and_text() {
        for failure in [
            Failure::NotFound,
            Failure::StorageUnavailable,
            Failure::Unavailable,
            Failure::KeyReused,
            Failure::BatchesBusy,
        ] {
            let e = ApiError::failure(failure);
            assert_eq!(e.status().as_u16(), failure.status());
            assert_eq!(e.message(), failure.text());
        }
    }
}
