//! One HTTP server, configured in one place for both tiers and every
//! protocol they speak.
//!
//! Built from actix's own parts (actix-server and actix-http, both under
//! actix-web) rather than `HttpServer`, whose TLS listener always offers
//! HTTP/2 once the `http2` feature is on (the internal tier needs it), and
//! actix-http 3 serves HTTP/2 with h2 0.3, which has no fix for
//! RUSTSEC-2026-0258 (an unbounded queue of empty DATA frames). So an
//! internet client is never given HTTP/2; the internal tier, whose only
//! peers are public hosts holding a client certificate, keeps it (see
//! deny.toml and docs/security.md).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_service::{IntoServiceFactory, ServiceFactory, ServiceFactoryExt as _};
use actix_web::dev::{AppConfig, Server};
use anyhow::Context;

use crate::settings::HttpSettings;

/// What a listener speaks.
pub enum Protocol {
    /// HTTP/1.1 on plain TCP: the public tier behind the ALB.
    Http1,
    /// HTTP/1.1, or HTTP/2 with prior knowledge (h2c): the internal tier.
    Http1OrH2c,
    /// HTTP/1.1 over TLS (ALPN `http/1.1` only): the public tier's own TLS.
    Http1Tls(Arc<rustls::ServerConfig>),
    /// HTTP/1.1 or HTTP/2 over TLS, by ALPN: the internal tier's mutual TLS.
    Http1OrH2Tls(Arc<rustls::ServerConfig>),
}

impl Protocol {
    pub fn is_tls(&self) -> bool {
        matches!(self, Protocol::Http1Tls(_) | Protocol::Http1OrH2Tls(_))
    }
}

/// A listener bound now, so a port-0 bind is known before anything serves.
pub fn bind(addr: std::net::SocketAddr, tier: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for the {tier} tier"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the app that `factory` builds (once per worker) on `listener`,
/// with the shared HTTP limits and a graceful stop within `shutdown`.
/// Signals are the application's (`startup::cancel_on_signals`).
pub fn serve<F, I, S, B>(
    name: &str,
    listener: TcpListener,
    protocol: Protocol,
    http: &HttpSettings,
    shutdown: Duration,
    factory: F,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let mut builder = actix_server::Server::build()
        .max_concurrent_connections(http.max_connections)
        .shutdown_timeout(shutdown.as_secs())
        .disable_signals();
    if http.workers > 0 {
        builder = builder.workers(http.workers);
    }
    let connections = Connections {
        keep_alive: Duration::from_secs(http.keep_alive_secs),
        head_timeout: Duration::from_millis(http.request_head_timeout_ms),
        addr,
        signal: builder.graceful_shutdown_signal(),
    };
    let protocol = Arc::new(protocol);
    let builder = builder.listen(format!("cinemo-{name}-{addr}"), listener, move || {
        let app = actix_service::map_config(
            factory()
                .into_factory()
                .map_err(|err| err.into().error_response()),
            // Host and scheme only feed `ConnectionInfo` and `url_for`,
            // which cinemo does not use; actix's constructor that takes
            // them is crate-private.
            |_| AppConfig::default(),
        );
        // Connection errors are actix-http's to log; the server drops them.
        match &*protocol {
            Protocol::Http1 => {
                actix_service::boxed::factory(connections.builder().finish(app).tcp().map_err(drop))
            }
            Protocol::Http1OrH2c => actix_service::boxed::factory(
                connections
                    .builder()
                    .finish(app)
                    .tcp_auto_h2c()
                    .map_err(drop),
            ),
            Protocol::Http1Tls(tls) => {
                let mut config = rustls::ServerConfig::clone(tls);
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                actix_service::boxed::factory(
                    connections
                        .builder()
                        .secure()
                        .h1(app)
                        .rustls_0_23(config)
                        .map_err(drop),
                )
            }
            // actix-http offers `h2` and `http/1.1` by ALPN itself.
            Protocol::Http1OrH2Tls(tls) => actix_service::boxed::factory(
                connections
                    .builder()
                    .secure()
                    .finish(app)
                    .rustls_0_23(rustls::ServerConfig::clone(tls))
                    .map_err(drop),
            ),
        }
    })?;
    Ok(builder.run())
}

/// How every connection of a server is served.
#[derive(Clone)]
struct Connections {
    keep_alive: Duration,
    head_timeout: Duration,
    addr: std::net::SocketAddr,
    signal: actix_server::GracefulShutdownSignal,
}

impl Connections {
    /// A connection service builder with the server's limits, for any
    /// stream type (`T`: TCP or TLS).
    fn builder<T, S>(&self) -> actix_http::HttpServiceBuilder<T, S>
    where
        S: ServiceFactory<actix_http::Request, Config = ()>,
        S::Error: Into<actix_http::Response<actix_web::body::BoxBody>> + 'static,
        S::InitError: std::fmt::Debug,
        <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    {
        let signal = self.signal.clone();
        actix_http::HttpServiceBuilder::default()
            .graceful_shutdown_signal(move || {
                let signal = signal.clone();
                async move { signal.notified().await }
            })
            .keep_alive(self.keep_alive)
            .client_request_timeout(self.head_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            // Responses go out whole in one write; Nagle would only hold
            // back the tail of a large one waiting for an ACK.
            .tcp_nodelay(true)
            .local_addr(self.addr)
    }
}
