//! The public tier: the customers API, calling the internal tier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, middleware, web};

use super::server::{self, Protocol};
use crate::http::batch::BatchLimits;
use crate::http::{common, guards, openapi, public, rate_limit, telemetry, tiers};
use crate::internal_client::InternalClientConfig;
use crate::settings::Settings;
use crate::telemetry::Diagnostics;
use crate::telemetry::names::LOG_PUBLIC_LISTENING;
use crate::tls::Reloader;

pub struct PublicTier {
    pub addr: SocketAddr,
    /// Whether the listener speaks TLS.
    pub tls: bool,
    pub server: Server,
    pub tls_reloaders: Vec<Arc<Reloader>>,
}

/// Where the public tier finds the internal one: `public.internal_url`, or
/// in `all` mode this process's own internal listener, over loopback and
/// through the same client as in production.
pub enum InternalTierAt {
    Url(String),
    /// The internal listener of this process.
    Local {
        addr: SocketAddr,
        tls: bool,
    },
}

impl InternalTierAt {
    fn url(&self) -> String {
        match self {
            InternalTierAt::Url(url) => url.clone(),
            // The test and dev certificates name `localhost`.
            InternalTierAt::Local { addr, tls: true } => {
                format!("https://localhost:{}", addr.port())
            }
            InternalTierAt::Local { addr, tls: false } => format!("http://{addr}"),
        }
    }
}

/// Binds the public listener.
pub fn build(
    settings: &Settings,
    internal: &InternalTierAt,
    diagnostics: Diagnostics,
) -> anyhow::Result<PublicTier> {
    let internal_url = internal.url();
    let client = InternalClientConfig::new(
        &settings.public,
        &internal_url,
        Duration::from_millis(settings.batch.internal_timeout_ms),
    )?;
    let listener = server::bind(settings.public.listen, "public")?;
    let addr = listener.local_addr()?;
    let (tls, tls_reloader) = crate::tls::public_server(&settings.public.tls)?.unzip();
    let protocol = match tls {
        Some(tls) => Protocol::Http1Tls(tls),
        None => Protocol::Http1,
    };
    let tls = protocol.is_tls();
    let tls_reloaders = tls_reloader
        .map(Arc::new)
        .into_iter()
        .chain(client.tls_reloader())
        .collect();
    let batch = BatchLimits::new(&settings.batch);
    let guards = guards::Guards::new(&settings.http);
    let limiter = rate_limit::RateLimit::new(&settings.public)?;
    let max_body = settings.public.max_body_bytes;
    let mode = settings.mode;
    let access = telemetry::AccessLog {
        on: settings.log.access,
        tier: "public",
    };
    let document = openapi::document(openapi::Tier::Public)?;
    let app = move || {
        // One client per worker keeps each worker's pooled connections on
        // its own runtime.
        let internal = client.build();
        // The last `.wrap()` is the outermost: telemetry sees every answer,
        // the limiter's 429 included, and the limiter turns a client over
        // its budget away before the guards or a handler do any work.
        App::new()
            .wrap(middleware::from_fn(move |req, next| {
                guards::check(guards, req, next)
            }))
            .wrap(middleware::Condition::new(limiter.enabled(), {
                let limiter = limiter.clone();
                middleware::from_fn(move |req, next| rate_limit::check(limiter.clone(), req, next))
            }))
            .wrap(middleware::from_fn(move |req, next| {
                telemetry::request_telemetry(access, req, next)
            }))
            .app_data(web::Data::new(public::PublicState {
                internal,
                diagnostics: diagnostics.clone(),
            }))
            .app_data(web::PayloadConfig::new(max_body))
            .configure(|cfg| {
                tiers::public(cfg, &batch, mode, document.clone());
            })
            .default_service(web::to(common::not_found))
    };
    let shutdown = Duration::from_secs(settings.shutdown.timeout_secs);
    let server = server::serve("public", listener, protocol, &settings.http, shutdown, app)?;
    tracing::info!(
        %addr,
        tls,
        internal = %internal_url,
        http2 = settings.public.internal_http2,
        "{LOG_PUBLIC_LISTENING}"
    );
    Ok(PublicTier {
        addr,
        tls,
        server,
        tls_reloaders,
    })
}
