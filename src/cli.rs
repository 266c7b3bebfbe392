//! The command line. `main.rs` parses it and calls `run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::settings::{self, Mode, Settings, Sources};
use crate::{build_info, diagnostics_reader, smoke, startup, telemetry, tls};

#[derive(Debug, Parser)]
#[command(
    name = "cinemo",
    version = build_info::long_version(),
    about = "Company XYZ's customers API (public tier) and cache API (internal tier) in one binary",
    long_about = "Company XYZ's customers API (public tier) and cache API (internal tier) in one binary.\n\n\
Configuration layers, last wins: built-in defaults, $CINEMO_CONFIG_DIR/default.toml, \
$CINEMO_CONFIG_DIR/$CINEMO_ENV.toml, --config FILE, CINEMO__SECTION__KEY environment variables, --mode. \
CINEMO_CONFIG_DIR defaults to ./config. See docs/configuration.md."
)]
pub struct Cli {
    /// Which tier(s) to run: public, internal, or all (both in one process, on loopback).
    /// Beats `mode` in every configuration layer.
    #[arg(long, global = true, value_enum)]
    pub mode: Option<Mode>,

    /// A TOML file layered over the config directory's files.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured tier(s) until SIGTERM or SIGINT (the default command).
    Serve,
    /// Exit 0 when URL/api/health/live answers 200 within 2 seconds, else 1.
    Healthcheck {
        /// Base URL of a cinemo tier, e.g. http://127.0.0.1:8080 (host:port means http://host:port)
        #[arg(value_parser = base_url)]
        url: String,
    },
    /// Print the effective configuration (secrets redacted); exit 1 if it is invalid.
    Config,
    /// Create and read back a customer and check health and version through a
    /// deployed public tier; exit 0, or 1 with the failing step.
    Smoke {
        /// Base URL of the public tier, e.g. https://api.example.com (host:port means http://host:port)
        #[arg(long, value_parser = base_url)]
        url: String,
        /// Seconds each request may take.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Read back what cinemo wrote to the Kinesis diagnostics stream: one
    /// trace's log frames, or the counters per minute. Stream, region and
    /// endpoint come from kinesis.* as for the sink; credentials from the
    /// standard AWS chain. Exit 1 with one line when the stream cannot be read.
    Diagnostics(diagnostics_reader::DiagnosticsArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config, cli.mode),
        Command::Config => match load(cli.config, cli.mode) {
            Some(settings) => {
                print!("{}", settings.to_redacted_toml());
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Healthcheck { url } => block_on(healthcheck(url)),
        Command::Smoke { url, timeout_secs } => {
            block_on(smoke::run(url, Duration::from_secs(timeout_secs)))
        }
        Command::Diagnostics(args) => diagnostics_reader::run(args, cli.config, cli.mode),
    }
}

fn load(config: Option<PathBuf>, mode: Option<Mode>) -> Option<Settings> {
    match settings::load(&Sources::from_process(config, mode)) {
        Ok(settings) => Some(settings),
        Err(e) => {
            eprintln!("cinemo: invalid configuration: {e:#}");
            None
        }
    }
}

fn block_on(fut: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("cinemo: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, mode: Option<Mode>) -> ExitCode {
    let Some(settings) = load(config, mode) else {
        return ExitCode::from(2);
    };
    tls::install_crypto_provider();
    telemetry::logging::init(&settings.log);
    tracing::info!(
        version = build_info::VERSION,
        git_sha = build_info::GIT_SHA,
        channel = build_info::CHANNEL,
        mode = settings.mode.as_str(),
        "starting cinemo"
    );
    let otel = match telemetry::otel::init(&settings) {
        Ok(guard) => guard,
        Err(e) => {
            // Metrics and traces are worth a warning, not an outage.
            tracing::error!(
                error = format!("{e:#}"),
                "OpenTelemetry export is off: cannot start it"
            );
            None
        }
    };
    let flush_budget = startup::telemetry_flush_budget(&settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let stop = CancellationToken::new();
        startup::cancel_on_signals(stop.clone())?;
        let app = startup::Application::build(settings).await?;
        app.run_until_stopped(stop).await
    });
    if let Some(otel) = otel {
        otel.shutdown(flush_budget);
    }
    match result {
        Ok(()) => {
            tracing::info!("cinemo stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cinemo failed");
            eprintln!("cinemo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A base URL as the commands take it: `http://` or `https://`, or
/// `host:port` meaning `http://host:port`; no trailing slash.
pub fn base_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| format!("{e} (expected e.g. http://127.0.0.1:8080)"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the URL must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host (expected e.g. http://127.0.0.1:8080)".into());
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}

async fn healthcheck(url: String) -> ExitCode {
    tls::install_crypto_provider();
    let target = format!("{}/api/health/live", url.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cinemo healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&target).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("cinemo healthcheck: {target} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                why = format!("{why}: {cause}");
                source = cause.source();
            }
            eprintln!("cinemo healthcheck: {target}: {why}");
            ExitCode::FAILURE
        }
    }
}
