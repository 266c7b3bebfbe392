//! Building (bind listeners, open storage) is separate from serving, so tests
//! can bind port 0 and read the real addresses before anything is served.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::http::batch::BatchLimits;
use crate::http::{common, guards, internal, openapi, public, rate_limit, telemetry};
use crate::internal_client::InternalClientConfig;
use crate::notify;
use crate::settings::{HttpSettings, Mode, Settings};
use crate::storage::{self, Store};
use crate::telemetry::Diagnostics;
use crate::telemetry::kinesis_sink::KinesisSink;
use crate::telemetry::names::{APP_ID_INTERNAL, APP_ID_PUBLIC};

pub struct Application {
    settings: Settings,
    public: Option<(SocketAddr, Server)>,
    internal: Option<(SocketAddr, Server)>,
    store: Option<Arc<dyn Store>>,
    kinesis: Option<KinesisSink>,
}

fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for the {what} tier"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Applies the shared HTTP settings to either tier's server. A macro, since
/// actix's `HttpServer` generics are not worth spelling out twice.
macro_rules! with_limits {
    ($server:expr, $http:expr, $shutdown:expr) => {{
        let http: &HttpSettings = $http;
        let server = $server
            .keep_alive(Duration::from_secs(http.keep_alive_secs))
            .client_request_timeout(Duration::from_millis(http.request_head_timeout_ms))
            .client_disconnect_timeout(Duration::from_secs(1))
            .max_connections(http.max_connections)
            // Responses go out whole in one write; Nagle would only hold
            // back the tail of a large one waiting for an ACK.
            .tcp_nodelay(true)
            .shutdown_timeout($shutdown.as_secs())
            .disable_signals();
        if http.workers > 0 {
            server.workers(http.workers)
        } else {
            server
        }
    }};
}

/// The public tier's TLS listener: HTTP/1.1 only, ALPN `http/1.1`.
///
/// actix's own `listen_rustls_0_23` always offers `h2` once the `http2`
/// feature is on (the internal tier needs it), and actix-http 3 serves
/// HTTP/2 with h2 0.3, which has no fix for RUSTSEC-2026-0258 (unbounded
/// queue of empty DATA frames). So an internet client is never given
/// HTTP/2: this builds the same server as `HttpServer` with `with_limits!`,
/// but on actix-http's HTTP/1.1-only service. The internal tier, whose only
/// peers are public hosts holding a client certificate, keeps HTTP/2 (see
/// deny.toml and docs/security.md).
fn h1_tls_server<F, I, S, B>(
    factory: F,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    http: &HttpSettings,
    shutdown: Duration,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: actix_service::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
        + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_service::ServiceFactoryExt as _;

    let mut config = Arc::unwrap_or_clone(tls);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux; the
    // HTTP/1.1 TLS service has no option of its own for it.
    socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    let addr = listener.local_addr()?;
    let keep_alive = Duration::from_secs(http.keep_alive_secs);
    let head_timeout = Duration::from_millis(http.request_head_timeout_ms);
    let mut builder = actix_server::Server::build()
        .max_concurrent_connections(http.max_connections)
        .shutdown_timeout(shutdown.as_secs())
        .disable_signals();
    if http.workers > 0 {
        builder = builder.workers(http.workers);
    }
    let signal = builder.graceful_shutdown_signal();
    let builder = builder.listen(format!("cinemo-public-tls-{addr}"), listener, move || {
        let signal = signal.clone();
        let app = actix_service::map_config(
            factory()
                .into_factory()
                .map_err(|err| err.into().error_response()),
            // Host and scheme only feed `ConnectionInfo`, which cinemo does
            // not read; actix's constructor with them is crate-private.
            |_| actix_web::dev::AppConfig::default(),
        );
        actix_http::HttpService::build()
            .graceful_shutdown_signal(move || {
                let signal = signal.clone();
                async move { signal.notified().await }
            })
            .keep_alive(keep_alive)
            .client_request_timeout(head_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            .secure()
            .h1(app)
            .rustls_0_23(config.clone())
    })?;
    Ok(builder.run())
}

impl Application {
    /// Opens storage (internal tier) and binds every listener of the mode.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let mode = settings.mode;
        let shutdown = Duration::from_secs(settings.shutdown.timeout_secs);
        // One sink for the process; each tier's frames carry its own appId.
        let kinesis = if settings.kinesis_enabled() {
            Some(KinesisSink::start(&settings.kinesis).await?)
        } else {
            None
        };
        let diagnostics = |app_id| match &kinesis {
            Some(sink) => sink.diagnostics(app_id),
            None => Diagnostics::disabled(app_id),
        };
        let mut tls_reloaders = Vec::new();

        let mut internal = None;
        let mut store = None;
        if mode.runs_internal() {
            let opened = storage::open(&settings).await?;
            let listener = bind(
                settings
                    .internal
                    .listen
                    .context("internal.listen unresolved")?,
                "internal",
            )?;
            let addr = listener.local_addr()?;
            let state = web::Data::new(internal::InternalState {
                store: opened.clone(),
                diagnostics: diagnostics(APP_ID_INTERNAL),
            });
            let max_body = settings.internal.max_body_bytes;
            let batch = BatchLimits::new(&settings.batch);
            let (tls, reloader) = crate::tls::internal_server(&settings.internal.tls)?.unzip();
            tls_reloaders.extend(reloader.map(Arc::new));
            let guards = guards::Guards::new(&settings.http);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(guards)
                    .wrap(actix_web::middleware::from_fn(guards::check))
                    // Outermost: every answer, guards' 408/414 included, is measured.
                    .wrap(actix_web::middleware::from_fn(
                        telemetry::follower_telemetry,
                    ))
                    .app_data(state.clone())
                    .app_data(web::PayloadConfig::new(max_body))
                    .configure(|cfg| internal::routes(cfg, &batch))
                    .configure(|cfg| common::routes(cfg, mode))
                    .configure(|cfg| openapi::routes(cfg, openapi::Tier::Internal))
                    .default_service(web::to(common::not_found))
            });
            let tls_on = tls.is_some();
            // The public tier speaks HTTP/2 to this listener (h2c when plain,
            // ALPN h2 over TLS); HTTP/1.1 clients (curl, the old tooling,
            // batches) still work.
            let server = with_limits!(server, &settings.http, shutdown);
            let server = match tls {
                Some(config) => server.listen_rustls_0_23(listener, Arc::unwrap_or_clone(config)),
                None => server.listen_auto_h2c(listener),
            }?
            .run();
            tracing::info!(%addr, tls = tls_on, backend = opened.backend(), "internal tier listening");
            internal = Some((addr, server));
            store = Some(opened);
        }

        let mut public = None;
        if mode.runs_public() {
            // In `all` mode the public tier calls this process's own internal
            // listener over loopback: the same code path as production.
            let internal_url = match &internal {
                // The test and dev certificates name `localhost`.
                Some((addr, _))
                    if mode == Mode::All && settings.internal.tls.cert_file.is_some() =>
                {
                    format!("https://localhost:{}", addr.port())
                }
                Some((addr, _)) if mode == Mode::All => format!("http://{addr}"),
                _ => settings.public.internal_url.clone(),
            };
            let client = InternalClientConfig::new(
                &settings.public,
                &internal_url,
                Duration::from_millis(settings.batch.internal_timeout_ms),
            )?;
            let batch = BatchLimits::new(&settings.batch);
            let listener = bind(
                settings.public.listen.context("public.listen unresolved")?,
                "public",
            )?;
            let addr = listener.local_addr()?;
            let max_body = settings.public.max_body_bytes;
            let diagnostics = diagnostics(APP_ID_PUBLIC);
            let (tls, reloader) = crate::tls::public_server(&settings.public.tls)?.unzip();
            tls_reloaders.extend(reloader.map(Arc::new));
            tls_reloaders.extend(client.tls_reloader());
            let guards = guards::Guards::new(&settings.http);
            let limiter = rate_limit::RateLimit::new(&settings.public)?;
            let app = move || {
                // One client per worker keeps each worker's pooled
                // connections on its own runtime.
                let internal = client.build();
                App::new()
                    // Outermost first: the limiter answers 429 before any
                    // other work is done for a client over its budget.
                    .app_data(guards)
                    .wrap(actix_web::middleware::from_fn(guards::check))
                    .app_data(limiter.clone())
                    .wrap(actix_web::middleware::Condition::new(
                        limiter.enabled(),
                        actix_web::middleware::from_fn(rate_limit::check),
                    ))
                    // Outermost: every answer, 429s included, is measured.
                    .wrap(actix_web::middleware::from_fn(telemetry::request_telemetry))
                    .app_data(web::Data::new(public::PublicState {
                        internal,
                        diagnostics: diagnostics.clone(),
                    }))
                    .app_data(web::PayloadConfig::new(max_body))
                    .configure(|cfg| public::routes(cfg, &batch))
                    .configure(|cfg| common::routes(cfg, mode))
                    .configure(|cfg| openapi::routes(cfg, openapi::Tier::Public))
                    .default_service(web::to(common::not_found))
            };
            let tls_on = tls.is_some();
            let server = match tls {
                Some(tls) => h1_tls_server(app, listener, tls, &settings.http, shutdown)?,
                None => with_limits!(HttpServer::new(app), &settings.http, shutdown)
                    .listen(listener)?
                    .run(),
            };
            tracing::info!(%addr, tls = tls_on, internal = %internal_url, http2 = settings.public.internal_http2, "public tier listening");
            public = Some((addr, server));
        }

        crate::tls::reload_on_sighup(tls_reloaders)?;
        Ok(Application {
            settings,
            public,
            internal,
            store,
            kinesis,
        })
    }

    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public.as_ref().map(|(a, _)| *a)
    }

    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal.as_ref().map(|(a, _)| *a)
    }

    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// Serves until `stop` fires, then drains: the public tier first (its
    /// in-flight requests may still need the internal tier), then the
    /// internal tier, then storage. Returns an error if a server stopped on
    /// its own.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let handles: Vec<(&str, ServerHandle)> =
            [("public", &self.public), ("internal", &self.internal)]
                .into_iter()
                .filter_map(|(name, s)| s.as_ref().map(|(_, server)| (name, server.handle())))
                .collect();
        let mut tasks = Vec::new();
        for (_, server) in [self.public, self.internal].into_iter().flatten() {
            tasks.push(tokio::spawn(server));
        }

        notify::ready();
        notify::spawn_watchdog(stop.clone());
        tracing::info!(mode = self.settings.mode.as_str(), "cinemo is ready");

        let unexpected = tokio::select! {
            _ = stop.cancelled() => None,
            (result, _, _) = futures_util::future::select_all(tasks.iter_mut()) => Some(result),
        };
        let stopped_at = tokio::time::Instant::now();

        notify::stopping();
        tracing::info!(
            deadline_secs = self.settings.shutdown.timeout_secs,
            "shutting down: draining in-flight requests"
        );
        for (name, handle) in &handles {
            handle.stop(true).await;
            tracing::info!(tier = name, "tier drained");
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Some(store) = &self.store {
            store.close().await;
        }
        // Telemetry flushes last, so it carries the drain's own frames.
        if let Some(sink) = self.kinesis {
            // What is left of the shutdown deadline, capped by the flush
            // budget, with a second's floor when the drain used it all.
            let now = tokio::time::Instant::now();
            let deadline = stopped_at + Duration::from_secs(self.settings.shutdown.timeout_secs);
            let deadline = deadline
                .min(now + telemetry_flush_budget(&self.settings))
                .max(now + Duration::from_secs(1));
            sink.shutdown(deadline).await;
        }
        match unexpected {
            None => Ok(()),
            Some(Ok(Ok(()))) => anyhow::bail!("a server stopped unexpectedly"),
            Some(Ok(Err(e))) => Err(anyhow::Error::new(e).context("a server failed")),
            Some(Err(e)) => Err(anyhow::Error::new(e).context("a server task panicked")),
        }
    }
}

/// The most the Kinesis flush and the OpenTelemetry flush may each take at
/// shutdown, so an outage of either cannot hold the process past systemd's
/// 15 s margin over the drain deadline.
pub fn telemetry_flush_budget(settings: &Settings) -> Duration {
    Duration::from_secs(settings.shutdown.timeout_secs.clamp(1, 6))
}

/// Fires `token` on the first SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        token.cancel();
    });
    Ok(())
}
