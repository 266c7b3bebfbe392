//! The configuration sections that need no resolving: what a file says is
//! what the binary uses. Every struct has `#[serde(default)]`, so one layer
//! (a file, or the environment) can be checked on its own for unknown keys.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServerTlsSettings {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_ca_file: Option<String>,
    /// In `internal` mode, refuse to start without a certificate and a client
    /// CA. Off in the built-in defaults (a laptop runs plain HTTP), on in
    /// `edge.toml`/`stable.toml`: turning it off there is the explicit
    /// "allow plaintext" switch. `all` mode talks over loopback and is exempt.
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListenerTlsSettings {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// Per-client request budget of the public tier (a token bucket per client
/// address): `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: false,
            per_second: 50,
            burst: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClientTlsSettings {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca_file: Option<String>,
    /// In `public` mode, refuse to start unless the internal tier is reached
    /// over mutual TLS; see `ServerTlsSettings::required`.
    pub required: bool,
}

/// Settings shared by both HTTP servers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Worker threads per server; 0 means one per CPU core.
    pub workers: usize,
    /// Longer than the ALB's 60 s idle timeout, so the ALB closes first.
    pub keep_alive_secs: u64,
    /// Time a client has to send its request head (slow-loris guard).
    pub request_head_timeout_ms: u64,
    /// Time a client has to send a whole request body (slow-body guard).
    pub request_body_timeout_ms: u64,
    /// Longer request targets are answered 414.
    pub max_uri_bytes: usize,
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            workers: 0,
            keep_alive_secs: 75,
            request_head_timeout_ms: 5_000,
            request_body_timeout_ms: 10_000,
            max_uri_bytes: 4096,
            max_connections: 25_000,
        }
    }
}

/// The batch routes (`POST /api/customers/batch`, `POST /api/cache/batch`).
/// Their own section so the limits of the single-item routes stay small.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchSettings {
    /// Most items one batch may carry; more is a 400.
    pub max_items: usize,
    /// Body size limit of the batch routes only (other routes keep
    /// `public.max_body_bytes` / `internal.max_body_bytes`).
    pub max_body_bytes: usize,
    /// Batches served at once per tier and process; beyond it 429 with
    /// `Retry-After`, so bursts cannot exhaust memory or the database pool.
    pub max_concurrent: usize,
    /// Seconds a client told 429 is asked to wait.
    pub retry_after_secs: u64,
    /// Whole-request deadline of the public tier's batch call to the internal
    /// tier; must exceed `storage.batch_timeout_ms`.
    pub internal_timeout_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_items: 100_000,
            max_body_bytes: 64 * 1024 * 1024,
            max_concurrent: 4,
            retry_after_secs: 5,
            internal_timeout_ms: 90_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OtlpSettings {
    pub enabled: bool,
    pub endpoint: String,
    /// How often metrics are exported (and the longest a span waits).
    pub export_interval_ms: u64,
    /// Deadline of one export request.
    pub timeout_ms: u64,
    /// Share of new traces (requests without a `traceparent`) whose spans
    /// are recorded and exported, 0.0 to 1.0. A request with a `traceparent`
    /// follows the caller's sampled flag, so a caller can always ask for
    /// its request to be traced. Metrics count every request either way.
    pub trace_sample_ratio: f64,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings {
            enabled: true,
            endpoint: "http://127.0.0.1:4318".into(),
            export_interval_ms: 10_000,
            timeout_ms: 3_000,
            trace_sample_ratio: 0.1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownSettings {
    /// How long in-flight requests get to finish after SIGTERM.
    pub timeout_secs: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { timeout_secs: 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// A tracing filter: `info`, `debug`, `cinemo=debug,info`, ...
    pub level: String,
    pub format: LogFormat,
    /// One line per request at INFO (target `cinemo::access`), both tiers.
    pub access: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Json,
            access: true,
        }
    }
}

impl LogSettings {
    /// `level` as a filter. Stricter than tracing's own parser, which takes
    /// a word that is not a level for a target name: `inof` or `verbose`
    /// would then silence every line. Each comma-separated directive must
    /// be a level or end in `=<level>`.
    pub fn filter(&self) -> anyhow::Result<tracing_subscriber::EnvFilter> {
        use std::str::FromStr;
        use tracing_subscriber::filter::LevelFilter;
        let is_level = |s: &str| LevelFilter::from_str(s.trim()).is_ok();
        for directive in self.level.split(',').map(str::trim) {
            let explicit = directive
                .rsplit_once('=')
                .is_some_and(|(_, level)| is_level(level));
            if !directive.is_empty() && !explicit && !is_level(directive) {
                anyhow::bail!(
                    "log.level {:?}: {directive:?} is neither a level (trace, debug, info, warn, \
                     error, off) nor target=level (cinemo=debug)",
                    self.level
                );
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.level).map_err(|e| {
            anyhow::anyhow!(
                "log.level {:?} is not a valid level or filter: {e}",
                self.level
            )
        })
    }
}

/// A CIDR list given either as a TOML array or as one comma-separated string
/// (environment variables cannot carry arrays). A bare address means /32 or
/// /128.
pub(super) fn cidr_list<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(de)? {
        Raw::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        Raw::Many(v) => v,
    };
    items
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{item:?} is not an IP network (CIDR) or address"
                    ))
                })
        })
        .collect()
}
