//! Building (bind listeners, open storage) is separate from serving, so tests
//! can bind port 0 and read the real addresses before anything is served.
//! Each tier is built by its own module; `server` configures every HTTP
//! server the same way.

mod banner;
mod internal_tier;
mod public_tier;
mod server;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::notify;
use crate::settings::Settings;
use crate::storage::Store;
use crate::telemetry::Diagnostics;
use crate::telemetry::kinesis_sink::KinesisSink;
use crate::telemetry::names::{APP_ID_INTERNAL, APP_ID_PUBLIC, LOG_READY, LOG_TIER_DRAINED};
use public_tier::InternalTierAt;

pub struct Application {
    settings: Settings,
    /// The servers, in the order they drain: the public tier first (its
    /// in-flight requests may still need the internal tier).
    servers: Vec<(&'static str, Server)>,
    store: Option<Arc<dyn Store>>,
    kinesis: Option<KinesisSink>,
    /// The listeners bound, for the banner.
    public: Option<banner::Listener>,
    internal: Option<banner::Listener>,
}

impl Application {
    /// Opens storage (internal tier) and binds every listener of the mode.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // One sink for the process; each tier's frames carry its own appId.
        let kinesis = match &settings.kinesis {
            Some(kinesis) => Some(KinesisSink::start(kinesis).await?),
            None => None,
        };
        let diagnostics = |app_id| match &kinesis {
            Some(sink) => sink.diagnostics(app_id),
            None => Diagnostics::disabled(app_id),
        };
        let mut servers = Vec::new();
        let mut reloaders = Vec::new();
        let mut internal_at = InternalTierAt::Url(settings.public.internal_url.clone());
        let mut store = None;
        let (mut public, mut internal) = (None, None);
        if settings.mode.runs_internal() {
            let tier = internal_tier::build(&settings, diagnostics(APP_ID_INTERNAL)).await?;
            internal = Some(banner::Listener {
                addr: tier.addr,
                tls: tier.tls,
            });
            if settings.mode.runs_public() {
                internal_at = InternalTierAt::Local {
                    addr: tier.addr,
                    tls: tier.tls,
                };
            }
            reloaders.extend(tier.tls_reloader.map(Arc::new));
            servers.push(("internal", tier.server));
            store = Some(tier.store);
        }
        if settings.mode.runs_public() {
            let tier = public_tier::build(&settings, &internal_at, diagnostics(APP_ID_PUBLIC))?;
            public = Some(banner::Listener {
                addr: tier.addr,
                tls: tier.tls,
            });
            reloaders.extend(tier.tls_reloaders);
            servers.insert(0, ("public", tier.server));
        }
        crate::tls::reload_on_sighup(reloaders)?;
        Ok(Application {
            settings,
            servers,
            store,
            kinesis,
            public,
            internal,
        })
    }

    /// Serves until `stop` fires, then drains: the public tier first (its
    /// in-flight requests may still need the internal tier), then the
    /// internal tier, then storage. Returns an error if a server stopped on
    /// its own.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let handles: Vec<(&str, ServerHandle)> = self
            .servers
            .iter()
            .map(|(name, server)| (*name, server.handle()))
            .collect();
        let mut tasks: Vec<_> = self
            .servers
            .into_iter()
            .map(|(_, server)| tokio::spawn(server))
            .collect();

        notify::ready();
        notify::spawn_watchdog(stop.clone());
        tracing::info!(mode = self.settings.mode.as_str(), "{LOG_READY}");
        banner::log(&self.settings, self.public, self.internal);

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
            tracing::info!(tier = name, "{LOG_TIER_DRAINED}");
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
