//! The internal tier: storage, and the cache API over it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, middleware, web};

use super::server::{self, Protocol};
use crate::http::batch::BatchLimits;
use crate::http::{common, guards, internal, openapi, telemetry, tiers};
use crate::settings::Settings;
use crate::storage::{self, Store};
use crate::telemetry::Diagnostics;
use crate::telemetry::names::LOG_INTERNAL_LISTENING;
use crate::tls::Reloader;

pub struct InternalTier {
    pub addr: SocketAddr,
    pub server: Server,
    pub store: Arc<dyn Store>,
    /// Whether the listener speaks TLS (the public tier of an `all`
    /// process then calls it over TLS too).
    pub tls: bool,
    pub tls_reloader: Option<Reloader>,
}

/// Opens storage and binds the internal listener.
pub async fn build(settings: &Settings, diagnostics: Diagnostics) -> anyhow::Result<InternalTier> {
    let store = storage::open(&settings.storage).await?;
    let listener = server::bind(settings.internal.listen, "internal")?;
    let addr = listener.local_addr()?;
    let (tls, tls_reloader) = crate::tls::internal_server(&settings.internal.tls)?.unzip();
    // The public tier speaks HTTP/2 to this listener (h2c when plain, ALPN
    // h2 over TLS); HTTP/1.1 clients (curl, the old tooling, batches)
    // still work.
    let protocol = match tls {
        Some(tls) => Protocol::Http1OrH2Tls(tls),
        None => Protocol::Http1OrH2c,
    };
    let tls = protocol.is_tls();
    let state = web::Data::new(internal::InternalState {
        store: store.clone(),
        diagnostics,
    });
    let max_body = settings.internal.max_body_bytes;
    let batch = BatchLimits::new(&settings.batch);
    let guards = guards::Guards::new(&settings.http);
    let mode = settings.mode;
    let access = telemetry::AccessLog {
        on: settings.log.access,
        tier: "internal",
    };
    let document = openapi::document(openapi::Tier::Internal)?;
    let app = move || {
        // The last `.wrap()` is the outermost: telemetry sees every answer,
        // the guards' 408 and 414 included.
        App::new()
            .wrap(middleware::from_fn(move |req, next| {
                guards::check(guards, req, next)
            }))
            .wrap(middleware::from_fn(move |req, next| {
                telemetry::follower_telemetry(access, req, next)
            }))
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .configure(|cfg| {
                tiers::internal(cfg, &batch, mode, document.clone());
            })
            .default_service(web::to(common::not_found))
    };
    let shutdown = Duration::from_secs(settings.shutdown.timeout_secs);
    let server = server::serve(
        "internal",
        listener,
        protocol,
        &settings.http,
        shutdown,
        app,
    )?;
    tracing::info!(%addr, tls, backend = store.backend(), "{LOG_INTERNAL_LISTENING}");
    Ok(InternalTier {
        addr,
        server,
        store,
        tls,
        tls_reloader,
    })
}
