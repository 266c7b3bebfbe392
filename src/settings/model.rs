//! The typed configuration. Every struct has `#[serde(default)]` so one layer
//! (a file, or the environment) can be checked on its own for unknown keys.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The internet-facing customers API.
    Public,
    /// The cache API over storage, reachable only from the public tier.
    Internal,
    /// Both tiers in one process, on loopback (a laptop or one small host).
    #[default]
    All,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Public => "public",
            Mode::Internal => "internal",
            Mode::All => "all",
        }
    }
    pub fn runs_public(self) -> bool {
        matches!(self, Mode::Public | Mode::All)
    }
    pub fn runs_internal(self) -> bool {
        matches!(self, Mode::Internal | Mode::All)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    Sqlite,
    Postgres,
    Mongodb,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Sqlite => "sqlite",
            StorageType::Postgres => "postgres",
            StorageType::Mongodb => "mongodb",
        }
    }

    /// The backend a connection string's scheme names, if any.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(StorageType::Sqlite),
            "postgres" | "postgresql" => Some(StorageType::Postgres),
            "mongodb" | "mongodb+srv" => Some(StorageType::Mongodb),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub mode: Mode,
    pub public: PublicSettings,
    pub internal: InternalSettings,
    pub http: HttpSettings,
    pub storage: StorageSettings,
    pub kinesis: KinesisSettings,
    pub otlp: OtlpSettings,
    pub shutdown: ShutdownSettings,
    pub log: LogSettings,
    pub batch: BatchSettings,
    /// The old Node key `service.port`; folded into the listen address of
    /// the tier being run, then cleared.
    #[serde(skip_serializing_if = "LegacyService::is_empty")]
    pub service: LegacyService,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LegacyService {
    pub port: Option<u16>,
}

impl LegacyService {
    fn is_empty(&self) -> bool {
        self.port.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PublicSettings {
    /// `0.0.0.0:8080`, or `127.0.0.1:8080` in `all` mode.
    pub listen: Option<SocketAddr>,
    pub internal_url: String,
    pub internal_connect_timeout_ms: u64,
    /// Whole-request deadline for a call to the internal tier.
    pub internal_timeout_ms: u64,
    pub internal_pool_max_idle: usize,
    /// HTTP/2 to the internal tier for every call but batches (h2c, or h2
    /// over mutual TLS); false: HTTP/1.1 for every call.
    pub internal_http2: bool,
    /// Most seconds one connection to the internal tier is used before it
    /// is replaced: spreads the load again over the internal hosts behind
    /// the load balancer, and lets a draining internal tier finish within
    /// its `shutdown.timeout_secs` (keep this below it).
    pub internal_connection_max_age_secs: u64,
    pub max_body_bytes: usize,
    pub internal_tls: ClientTlsSettings,
    /// TLS on the public listener itself; normally TLS ends at the ALB.
    pub tls: ListenerTlsSettings,
    pub rate_limit: RateLimitSettings,
    /// Peers whose `X-Forwarded-For` is believed (the ALB's subnets).
    /// Empty: the header is ignored and every peer is limited by its own
    /// address. Production sets the VPC CIDR. A list in files; a
    /// comma-separated string in `CINEMO__PUBLIC__TRUSTED_PROXIES`.
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for PublicSettings {
    fn default() -> Self {
        PublicSettings {
            listen: None,
            internal_url: "http://127.0.0.1:8081".into(),
            internal_connect_timeout_ms: 1_000,
            internal_timeout_ms: 5_000,
            internal_pool_max_idle: 256,
            internal_http2: true,
            internal_connection_max_age_secs: 20,
            max_body_bytes: 64 * 1024,
            internal_tls: ClientTlsSettings::default(),
            tls: ListenerTlsSettings::default(),
            rate_limit: RateLimitSettings::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalSettings {
    /// `0.0.0.0:8081`, or `127.0.0.1:8081` in `all` mode.
    pub listen: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub tls: ServerTlsSettings,
}

impl Default for InternalSettings {
    fn default() -> Self {
        InternalSettings {
            listen: None,
            max_body_bytes: 1024 * 1024,
            tls: ServerTlsSettings::default(),
        }
    }
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// `sqlite` unless set, or picked by `DATABASE_URL` / `MONGODB_URL` or
    /// the scheme of `url`.
    #[serde(rename = "type")]
    pub kind: Option<StorageType>,
    /// A secret when it carries a password: never logged, redacted by
    /// `cinemo config`.
    pub url: Option<String>,
    pub database: String,
    pub collection: String,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    /// Deadline for one storage operation; past it the internal tier
    /// answers 504.
    pub timeout_ms: u64,
    /// Deadline for one batch insert (one transaction of up to
    /// `batch.max_items` documents), which takes longer than a single write.
    pub batch_timeout_ms: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            kind: None,
            url: None,
            database: "cinemo".into(),
            collection: "cache".into(),
            max_connections: 16,
            connect_timeout_ms: 2_000,
            timeout_ms: 2_000,
            batch_timeout_ms: 60_000,
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
pub struct KinesisSettings {
    /// Defaults to true once `stream_name` is set.
    pub enabled: Option<bool>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub stream_name: Option<String>,
    /// Unset: a partition key per record, spread across shards.
    pub partition_key: Option<String>,
    /// Frames queued for the sink; beyond it frames are dropped and counted.
    pub buffer_capacity: usize,
    /// Records per PutRecords call (at most 500).
    pub batch_max_records: usize,
    /// A partial batch is sent after this long.
    pub flush_interval_ms: u64,
    /// Ceiling of the retry backoff (exponential with jitter from 100 ms).
    pub max_backoff_ms: u64,
    /// Deadline of one PutRecords call.
    pub call_timeout_ms: u64,
}

impl Default for KinesisSettings {
    fn default() -> Self {
        KinesisSettings {
            enabled: None,
            region: None,
            endpoint: None,
            stream_name: None,
            partition_key: None,
            buffer_capacity: 10_000,
            batch_max_records: 500,
            flush_interval_ms: 1_000,
            max_backoff_ms: 5_000,
            call_timeout_ms: 5_000,
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
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Json,
        }
    }
}

/// A CIDR list given either as a TOML array or as one comma-separated string
/// (environment variables cannot carry arrays). A bare address means /32 or
/// /128.
fn cidr_list<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
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
