//! `cinemo diagnostics`: its arguments, the checks before the first call,
//! the read, and Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_kinesis::config::ProvideCredentials;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::errors::{Target, root_cause};
use super::frame::Frame;
use super::order::{Cadence, FOLLOW_POLL, Key};
use super::output::{MetricsView, Out, Parsed, TraceView, View};
use super::render;
use super::shard_reader::Start;
use super::since::{self, Since};
use super::stream_reader::{Received, StreamReader};
use crate::domain::TraceToken;
use crate::settings::{self, KinesisSettings, Mode, Sources};
use crate::telemetry::kinesis_client;

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["trace", "metrics"])))]
pub struct DiagnosticsArgs {
    /// The log frames of one trace token (the X-Trace a client sent), oldest
    /// first: time (UTC), tier, message.
    #[arg(long, value_name = "TOKEN", value_parser = parse_trace)]
    pub trace: Option<String>,

    /// The six counters per minute (UTC): attempts, successes and failures
    /// of createCustomer and readCustomer. Failures count every answer but
    /// 200, as the frames do; the alarms count only 5xx (docs/telemetry.md).
    #[arg(long)]
    pub metrics: bool,

    /// Where to start: a duration (15m, 2h), an RFC 3339 time
    /// (2026-11-01T17:03:00Z, 2026-11-01T18:03:00+01:00) or epoch
    /// milliseconds. Default 15m; with --follow, from now.
    #[arg(long, value_name = "WHEN", value_parser = since::parse_arg)]
    pub since: Option<Since>,

    /// Keep reading and print frames as they reach the stream, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,

    /// Print the trace's frames as written, one JSON object per line.
    #[arg(long, conflicts_with = "metrics")]
    pub json: bool,
}

fn parse_trace(text: &str) -> Result<String, String> {
    TraceToken::parse(text)
        .map(|t| t.as_str().to_owned())
        .ok_or_else(|| "a trace token is 1 to 128 printable ASCII characters".to_owned())
}

/// Frames are selected by their own timestamps, but Kinesis starts a read
/// at the time records reached the stream. A record reaches it after its
/// frame was written, unless the writing host's clock runs ahead of
/// Kinesis's: the read starts this much earlier than `--since` so that such
/// a frame is not missed, and frames before `--since` are left out.
const CLOCK_ALLOWANCE_MS: i64 = 10_000;

/// How a read ended, when it did not fail.
enum End {
    /// Read to the tip of the stream.
    Done,
    /// Ctrl-C while following.
    Stopped,
    /// Ctrl-C before a read that ends had ended.
    Interrupted,
    /// Whatever read standard output went away (`| head`).
    OutputClosed,
}

pub fn run(args: DiagnosticsArgs, config: Option<PathBuf>, mode: Option<Mode>) -> ExitCode {
    let settings = match settings::load(&Sources::from_process(config, mode)) {
        Ok(settings) => settings,
        Err(e) => return fail(&format!("invalid configuration: {e:#}")),
    };
    let Some(kinesis) = settings.kinesis else {
        return fail(
            "kinesis.stream_name is not set (or kinesis.enabled is false): give the environment's configuration \
             (CINEMO_ENV=edge or stable, CINEMO_CONFIG_DIR, or --config FILE) or CINEMO__KINESIS__STREAM_NAME",
        );
    };
    crate::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let stop = CancellationToken::new();
    let result = runtime.block_on(async {
        crate::startup::cancel_on_signals(stop.clone()).map_err(|e| format!("{e:#}"))?;
        diagnose(&args, &kinesis, kinesis.stream_name.clone(), &stop).await
    });
    // A call still in flight (a DNS lookup, a connection) is not waited for.
    runtime.shutdown_background();
    match result {
        Ok(End::Done | End::Stopped | End::OutputClosed) => ExitCode::SUCCESS,
        Ok(End::Interrupted) => {
            eprintln!("cinemo diagnostics: interrupted");
            ExitCode::from(130)
        }
        Err(line) => fail(&line),
    }
}

/// One line on stderr, exit 1: whatever the cause's text, it stays one line.
fn fail(line: &str) -> ExitCode {
    let line: Vec<&str> = line
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("cinemo diagnostics: {}", line.join("; "));
    ExitCode::FAILURE
}

/// Runs `work` unless Ctrl-C comes first.
macro_rules! unless_stopped {
    ($stop:expr, $work:expr) => {
        tokio::select! {
            biased;
            _ = $stop.cancelled() => None,
            result = $work => Some(result),
        }
    };
}

async fn diagnose(
    args: &DiagnosticsArgs,
    kinesis: &KinesisSettings,
    stream: String,
    stop: &CancellationToken,
) -> Result<End, String> {
    let Some((client, target)) = connect(kinesis, stream, stop).await? else {
        return Ok(End::Interrupted);
    };
    let started_ms = since::now_ms();
    let since_ms = match (args.since, args.follow) {
        (None, true) => None,
        (since, _) => Some(since.unwrap_or(Since::DEFAULT).resolve(started_ms)),
    };
    if let Some(ms) = since_ms.filter(|ms| *ms > started_ms) {
        return Err(format!("--since {} is in the future", render::time(ms)));
    }
    let start = match since_ms {
        Some(ms) => Start::At(ms.saturating_sub(CLOCK_ALLOWANCE_MS)),
        None => Start::Latest,
    };
    let Some(opened) = unless_stopped!(
        stop,
        StreamReader::open(client, target.clone(), start, started_ms)
    ) else {
        return Ok(End::Interrupted);
    };
    let mut reader = opened?;
    eprintln!(
        "cinemo diagnostics: {} stream {} ({} shards, {}) from {}{}",
        if args.follow && since_ms.is_none() {
            "following"
        } else {
            "reading"
        },
        target.stream,
        reader.shard_count(),
        target.region,
        since_ms.map_or_else(|| "now".to_owned(), render::time),
        if args.follow { "; Ctrl-C stops" } else { "" }
    );

    let mut view: Box<dyn View> = match &args.trace {
        Some(token) => Box::new(TraceView::new(token.clone(), args.json, since_ms)),
        None => Box::new(MetricsView::new(since_ms.unwrap_or(started_ms), since_ms)),
    };
    let mut out = Out::stdout();
    let mut skipped = 0u64;

    // Everything up to now: the whole read, or the history of a follow.
    let mut received = Vec::new();
    let Some(caught_up) = unless_stopped!(stop, reader.catch_up(&mut received)) else {
        return Ok(End::Interrupted);
    };
    caught_up?;
    take_all(view.as_mut(), received, &mut skipped);
    if let Some(end) = printed(view.print(since::now_ms(), &mut out))? {
        return Ok(end);
    }
    let end = if args.follow {
        follow(&mut reader, view.as_mut(), &mut out, &mut skipped, stop).await?
    } else {
        End::Done
    };
    if let Some(closed) = printed(view.finish(since::now_ms(), &mut out))? {
        return Ok(closed);
    }
    if !args.follow
        && let Some(summary) = view.summary()
    {
        eprintln!("cinemo diagnostics: {summary}");
    }
    if skipped > 0 {
        eprintln!(
            "cinemo diagnostics: {skipped} records in the stream were not cinemo frames and were left out"
        );
    }
    Ok(end)
}

/// The client, once the region and credentials it needs are there: a
/// missing one is said by name rather than by a failed call.
async fn connect(
    kinesis: &KinesisSettings,
    stream: String,
    stop: &CancellationToken,
) -> Result<Option<(aws_sdk_kinesis::Client, Target)>, String> {
    let shared = kinesis_client::aws_config(kinesis).await;
    let Some(region) = shared.region().map(|r| r.to_string()) else {
        return Err(
            "no AWS region: set kinesis.region (CINEMO__KINESIS__REGION), AWS_REGION or a profile's region".into(),
        );
    };
    let Some(credentials) = shared.credentials_provider() else {
        return Err("no AWS credentials provider is configured".into());
    };
    let Some(loaded) = unless_stopped!(stop, credentials.provide_credentials()) else {
        return Ok(None);
    };
    if let Err(e) = loaded {
        // The chain's error goes on to list every provider it tried, one
        // per line; its first sentence is the news.
        let cause = root_cause(&e);
        let first = cause.lines().next().unwrap_or_default();
        return Err(format!(
            "no AWS credentials: {} (tried the environment, AWS_PROFILE and ~/.aws, web identity, ECS and the instance role)",
            first.split(". Attempted").next().unwrap_or_default()
        ));
    }
    let client = kinesis_client::client(&shared, kinesis);
    Ok(Some((
        client,
        Target::new(stream, region, kinesis.endpoint.clone()),
    )))
}

/// Polls every shard at the pace of `order::Cadence` and prints as frames
/// come, until Ctrl-C.
async fn follow(
    reader: &mut StreamReader,
    view: &mut dyn View,
    out: &mut Out,
    skipped: &mut u64,
    stop: &CancellationToken,
) -> Result<End, String> {
    let mut cadence = Cadence::default();
    let mut next_poll = Instant::now() + FOLLOW_POLL;
    loop {
        if unless_stopped!(stop, tokio::time::sleep_until(next_poll)).is_none() {
            return Ok(End::Stopped);
        }
        let mut received = Vec::new();
        let Some(polled) = unless_stopped!(stop, reader.poll_live(&mut received)) else {
            return Ok(End::Stopped);
        };
        polled?;
        let wanted = take_all(view, received, skipped);
        let (print_now, pause) = cadence.after_poll(wanted);
        if print_now && let Some(end) = printed(view.print(since::now_ms(), out))? {
            return Ok(end);
        }
        next_poll = Instant::now() + pause;
    }
}

/// Hands every record that is a frame to the view; true when the view
/// wants one of them printed soon.
fn take_all(view: &mut dyn View, received: Vec<Received>, skipped: &mut u64) -> bool {
    let mut wanted = false;
    for Received { record, receipt } in received {
        let Some(frame) = Frame::parse(&record.data) else {
            *skipped += 1;
            continue;
        };
        let key = Key {
            timestamp: frame.timestamp(),
            arrival_ms: record.arrival_ms,
            receipt,
        };
        wanted |= view.take(Parsed {
            key,
            frame,
            data: record.data,
        });
    }
    wanted
}

/// A failed write to stdout: a closed pipe ends the command quietly.
fn printed(result: std::io::Result<()>) -> Result<Option<End>, String> {
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(End::OutputClosed)),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: DiagnosticsArgs,
    }

    fn parse(args: &[&str]) -> Result<DiagnosticsArgs, String> {
        Cli::try_parse_from(std::iter::once("diagnostics").chain(args.iter().copied()))
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn one_of_trace_or_metrics() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--trace", "t", "--metrics"]).is_err());
        let a = parse(&["--trace", "t-1", "--since", "2h", "--follow", "--json"]).unwrap();
        assert_eq!(a.trace.as_deref(), Some("t-1"));
        assert_eq!(a.since, Some(Since::Ago(Duration::from_secs(7200))));
        assert!(a.follow && a.json);
        assert!(parse(&["--metrics"]).unwrap().metrics);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        assert!(
            parse(&["--trace", "a\u{7}b"])
                .unwrap_err()
                .contains("printable ASCII")
        );
        assert!(
            parse(&["--metrics", "--since", "15"])
                .unwrap_err()
                .contains("15m")
        );
        assert!(parse(&["--metrics", "--json"]).is_err());
    }
}
