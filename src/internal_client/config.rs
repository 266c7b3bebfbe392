//! Everything a worker needs to build its client for the internal tier,
//! checked once at start-up.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::header::HeaderValue;
use hyper::http::uri::{Authority, Scheme};
use rustls::pki_types::ServerName;

use super::pool::{Endpoint, Tls};
use crate::settings::PublicSettings;

/// Everything needed to build a client; built once per actix worker so each
/// worker's connections stay on its own thread.
#[derive(Clone)]
pub struct InternalClientConfig {
    pub(super) shared: Arc<Shared>,
    /// Swaps the certificate and CA inside the TLS configuration (every
    /// worker's client shares them).
    tls_reloader: Option<Arc<crate::tls::Reloader>>,
}

/// What every worker's client shares.
pub(super) struct Shared {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) scheme: Scheme,
    /// The URL's authority: `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    pub(super) authority: Authority,
    pub(super) host_header: HeaderValue,
    pub(super) http2: bool,
    pub(super) timeout: Duration,
    /// Batch calls carry up to `batch.max_items` documents: their own deadline.
    pub(super) batch_timeout: Duration,
}

impl InternalClientConfig {
    /// The client for the internal tier at `base_url`; `batch_timeout` is
    /// the deadline of a batch call (`batch.internal_timeout_ms`), every
    /// other call has `public.internal_timeout_ms`.
    pub fn new(
        settings: &PublicSettings,
        base_url: &str,
        batch_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (tls, tls_reloader) = crate::tls::internal_client(&settings.internal_tls)?.unzip();
        let url = reqwest::Url::parse(base_url)
            .with_context(|| format!("the internal tier's URL {base_url:?} is not a URL"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => anyhow::bail!("the internal tier's URL must be http or https, not {other}"),
        };
        // The scheme decides, as it always has: the settings insist on
        // https:// wherever public.internal_tls is set (except `all` mode
        // over a plain loopback listener), and the internal tier is only
        // ever verified against the private CA, never the web PKI.
        let tls = match (https, tls) {
            (true, None) => anyhow::bail!(
                "the internal tier's URL {base_url} is https://, so public.internal_tls.ca_file \
                 must be set: the internal tier is verified against the private CA only"
            ),
            (true, tls) => tls,
            (false, _) => None,
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            anyhow::bail!("the internal tier's URL {base_url} must not have a path or query");
        }
        let url_host = url
            .host_str()
            .context("the internal tier's URL has no host")?;
        // `[::1]` in a URL is `::1` to the resolver and to TLS.
        let host = url_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .context("the internal tier's URL has no port")?;
        let authority = match url.port() {
            Some(port) => format!("{url_host}:{port}"),
            None => url_host.to_owned(),
        };
        let tls = match tls {
            Some(config) => {
                // Each connection says in its handshake which protocol it speaks.
                let with_alpn = |protocol: &[u8]| {
                    let mut config = config.clone();
                    config.alpn_protocols = vec![protocol.to_vec()];
                    tokio_rustls::TlsConnector::from(Arc::new(config))
                };
                Some(Tls {
                    h1: with_alpn(b"http/1.1"),
                    h2: with_alpn(b"h2"),
                    name: ServerName::try_from(host.clone())
                        .with_context(|| format!("{host:?} is not a TLS server name"))?,
                })
            }
            None => None,
        };
        let endpoint = Endpoint {
            host,
            port,
            tls,
            connect_timeout: Duration::from_millis(settings.internal_connect_timeout_ms),
            max_age: Duration::from_secs(settings.internal_connection_max_age_secs),
            h1_max_idle: settings.internal_pool_max_idle,
        };
        Ok(InternalClientConfig {
            shared: Arc::new(Shared {
                endpoint: Arc::new(endpoint),
                scheme: if https { Scheme::HTTPS } else { Scheme::HTTP },
                authority: authority
                    .parse()
                    .context("the internal tier's URL has no valid authority")?,
                host_header: HeaderValue::from_str(&authority)
                    .context("the internal tier's URL is not a valid Host header")?,
                http2: settings.internal_http2,
                timeout: Duration::from_millis(settings.internal_timeout_ms),
                batch_timeout,
            }),
            tls_reloader: tls_reloader.map(Arc::new),
        })
    }

    pub fn tls_reloader(&self) -> Option<Arc<crate::tls::Reloader>> {
        self.tls_reloader.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_get_their_own_deadline_and_other_calls_the_request_deadline() {
        let settings = PublicSettings {
            internal_timeout_ms: 1_234,
            ..PublicSettings::default()
        }
        .listening_on("127.0.0.1:8080".parse().unwrap());
        let config =
            InternalClientConfig::new(&settings, "http://127.0.0.1:8081", Duration::from_secs(90))
                .unwrap();
        assert_eq!(config.shared.timeout, Duration::from_millis(1_234));
        assert_eq!(config.shared.batch_timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_url_the_client_cannot_use_is_refused_with_the_reason() {
        let settings = PublicSettings::default().listening_on("127.0.0.1:8080".parse().unwrap());
        let refused = |url: &str| {
            let e = InternalClientConfig::new(&settings, url, Duration::from_secs(1))
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            format!("{e:#}")
        };
        assert!(refused("ftp://h:1").contains("http or https"));
        assert!(refused("http://h:1/prefix").contains("path or query"));
        assert!(refused("https://h:1").contains("ca_file"));
        assert!(refused("not a url").contains("not a URL"));
    }
}
