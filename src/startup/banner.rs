//! What cinemo says once it is ready, after `LOG_READY`: where to go (each
//! tier's URL, Swagger UI and the OpenAPI document), the storage in use
//! and where telemetry goes. Log lines at INFO, so they reach journald
//! like every other line; a few lines for a person starting it by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::settings::Settings;
use crate::storage;

/// A bound listener of this process.
#[derive(Debug, Clone, Copy)]
pub struct Listener {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Listener {
    /// The base URL on this machine: a listener on every interface is
    /// reached on loopback.
    fn url(&self) -> String {
        let mut addr = self.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{addr}")
    }
}

pub fn log(settings: &Settings, public: Option<Listener>, internal: Option<Listener>) {
    if let Some(public) = public {
        let url = public.url();
        tracing::info!(
            %url,
            "public API at {url}; Swagger UI at {url}/api/docs, OpenAPI document at {url}/api/openapi.json"
        );
    }
    if let Some(internal) = internal {
        let url = internal.url();
        tracing::info!(%url, "internal API at {url}; Swagger UI at {url}/api/docs");
        let backend = settings.storage.kind().as_str();
        let location = storage::location(&settings.storage);
        tracing::info!(backend, %location, "storage: {backend} at {location}");
    }
    let otlp = if settings.otlp.enabled {
        format!(
            "metrics and traces to {} (OTLP/HTTP)",
            settings.otlp.endpoint
        )
    } else {
        "metrics and traces off (otlp.enabled = false)".to_owned()
    };
    let kinesis = match &settings.kinesis {
        Some(k) => format!("diagnostics frames to Kinesis stream {}", k.stream_name),
        None => "diagnostics frames off (no kinesis.stream_name)".to_owned(),
    };
    tracing::info!(
        otlp = settings.otlp.enabled,
        kinesis = settings.kinesis.is_some(),
        "telemetry: {otlp}; {kinesis}"
    );
}
