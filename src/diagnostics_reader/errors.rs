//! A failed Kinesis call, for someone at a terminal: something the reader
//! waits out (throttling, a lost connection, an expired iterator), or one
//! line that ends the command: never a chain of SDK errors.

use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};

/// The stream and where it lives, for the messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub stream: String,
    pub region: String,
    /// `kinesis.endpoint`, or the region's public endpoint.
    pub endpoint: String,
}

impl Target {
    pub fn new(stream: String, region: String, endpoint: Option<String>) -> Target {
        let endpoint =
            endpoint.unwrap_or_else(|| format!("https://kinesis.{region}.amazonaws.com"));
        Target {
            stream,
            region,
            endpoint,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Ends the command with this line.
    Fatal(String),
    /// Worth another call after a backoff. `throttled` when Kinesis asked
    /// for fewer calls, which is routine for a reader and said nowhere.
    Retry { reason: String, throttled: bool },
    /// The shard iterator is older than five minutes: get a new one.
    ExpiredIterator,
}

/// Kinesis's answers that mean "slow down" (API reference: GetRecords and
/// GetShardIterator throw ProvisionedThroughputExceededException beyond
/// five calls per second per shard; ListShards throws
/// LimitExceededException).
const THROTTLED: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
];

/// Kinesis's own transient failures.
const TRANSIENT: &[&str] = &["InternalFailure", "ServiceUnavailable"];

/// The credentials were sent and refused (unknown key, bad signature,
/// expired session).
const CREDENTIALS_REFUSED: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "MissingAuthenticationToken",
];

/// What a failed `operation` (`ListShards`, `GetRecords`, ...) means.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, operation: &str, target: &Target) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let endpoint = &target.endpoint;
    match err {
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or_default();
            let message = err.message().unwrap_or_default();
            let status = service.raw().status().as_u16();
            match code {
                "ExpiredIteratorException" => Failure::ExpiredIterator,
                "ResourceNotFoundException" if operation == "ListShards" => {
                    Failure::Fatal(format!(
                        "stream {} not found in region {} ({endpoint}): check kinesis.stream_name and kinesis.region",
                        target.stream, target.region
                    ))
                }
                "AccessDeniedException" => Failure::Fatal(format!(
                    "the AWS credentials in use may not read stream {} ({operation} refused; reading needs kinesis:ListShards, kinesis:GetShardIterator and kinesis:GetRecords): {message}",
                    target.stream
                )),
                c if CREDENTIALS_REFUSED.contains(&c) => Failure::Fatal(format!(
                    "AWS refused the credentials in use ({c}): {message}"
                )),
                c if THROTTLED.contains(&c) => Failure::Retry {
                    reason: format!("Kinesis is throttling {operation} ({c})"),
                    throttled: true,
                },
                c if TRANSIENT.contains(&c) || status >= 500 => Failure::Retry {
                    reason: format!("{operation} failed at {endpoint}: {}", or_status(c, status)),
                    throttled: false,
                },
                c => Failure::Fatal(format!(
                    "{operation} on stream {} failed: {}{}",
                    target.stream,
                    or_status(c, status),
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    }
                )),
            }
        }
        SdkError::TimeoutError(_) => Failure::Retry {
            reason: format!("no answer from {endpoint} within kinesis.call_timeout_ms"),
            throttled: false,
        },
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Failure::Retry {
            reason: format!("cannot reach {endpoint}: {}", root_cause(err)),
            throttled: false,
        },
        SdkError::ResponseError(_) => Failure::Retry {
            reason: format!("unreadable answer from {endpoint}: {}", root_cause(err)),
            throttled: false,
        },
        // Credentials that could not be loaded or refreshed, a request the
        // SDK could not build: trying again changes nothing.
        _ => Failure::Fatal(format!(
            "{operation} could not be sent: {}",
            root_cause(err)
        )),
    }
}

fn or_status(code: &str, status: u16) -> String {
    if code.is_empty() {
        format!("HTTP {status}")
    } else {
        code.to_owned()
    }
}

/// The innermost error's text: what actually happened ("Connection
/// refused (os error 111)"), without the layers around it.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
