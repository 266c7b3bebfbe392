//! The one aws-sdk-kinesis client cinemo builds, for the sink that writes
//! the diagnostics stream and for `cinemo diagnostics`, which reads it back:
//! both take region, endpoint and call timeout from `kinesis.*` and
//! credentials from the standard AWS chain (environment, profile, the
//! instance role on EC2).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::Region;

use crate::settings::KinesisSettings;

/// A client with SDK retries off (both callers retry with their own
/// backoff, and only what failed) and every call bounded by
/// `kinesis.call_timeout_ms` (connecting by at most 2 s of it), so a
/// blackholed endpoint ends in an error instead of a call that hangs.
pub async fn build(settings: &KinesisSettings) -> Client {
    client(&aws_config(settings).await, settings)
}

/// Region, endpoint and the credential chain, before a client is made of
/// them: `cinemo diagnostics` checks the region and credentials first, to
/// say which one is missing.
pub async fn aws_config(settings: &KinesisSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The client of [`build`], from a loaded [`aws_config`].
pub fn client(shared: &SdkConfig, settings: &KinesisSettings) -> Client {
    let call_timeout = Duration::from_millis(settings.call_timeout_ms.max(1));
    let config = aws_sdk_kinesis::config::Builder::from(shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(call_timeout.min(Duration::from_secs(2)))
                .operation_timeout(call_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}
