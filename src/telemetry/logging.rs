use std::io::IsTerminal;

use tracing::Level;
use tracing::subscriber::Interest;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{LogFormat, LogSettings};

/// Structured logs on stdout (journald on a host). Called once by main;
/// a second call (tests) is a no-op. `settings.level` was checked when
/// the settings were loaded.
pub fn init(settings: &LogSettings) {
    let level = settings.filter().unwrap_or_else(|e| {
        eprintln!("cinemo: {e:#}; logging at info");
        EnvFilter::new("info")
    });
    let quiet = SdkNoise {
        chatty: settings.level.contains("opentelemetry"),
    };
    let filter = level.and(quiet);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_target(true);
    let layer = match settings.format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter)
            .boxed(),
        // Colours only for a person at a terminal, not in a file or pipe.
        LogFormat::Text => layer
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(filter)
            .boxed(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The OpenTelemetry SDK's own events that cinemo reports itself: a failed
/// export is one WARN when export stops and one INFO when it works again
/// (`crate::telemetry::otel::export`), not an ERROR every few seconds.
/// The SDK logs through `tracing` with these event names, under the
/// targets `opentelemetry_sdk` and `opentelemetry-otlp`.
const REPORTED_BY_CINEMO: [&str; 4] = [
    "PeriodicReader.ExportError",
    "BatchSpanProcessor.ExportError",
    "Export.Failed.DeadlineExceeded",
    "Export.Failed.NonRetryable",
];

/// Drops the SDK's export errors (above), and its INFO and DEBUG chatter
/// ("Global meter provider is set") unless `log.level` names an
/// `opentelemetry` target. Decided once per call site: free per event.
struct SdkNoise {
    chatty: bool,
}

impl SdkNoise {
    fn keeps(&self, meta: &tracing::Metadata<'_>) -> bool {
        if !meta.target().starts_with("opentelemetry") {
            return true;
        }
        // More verbose levels compare greater.
        !REPORTED_BY_CINEMO.contains(&meta.name()) && (self.chatty || *meta.level() <= Level::WARN)
    }
}

impl<S> Filter<S> for SdkNoise {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.keeps(meta)
    }

    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> Interest {
        if self.keeps(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_and_error_rank_below_info() {
        assert!(Level::ERROR < Level::WARN && Level::WARN < Level::INFO);
    }
}
