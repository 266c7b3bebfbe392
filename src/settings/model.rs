//! The settings as the binary uses them: every layer applied, every
//! default and convention resolved, every cross-field rule checked
//! (`resolve.rs`). Nothing here is optional that the binary needs.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::sections::{
    BatchSettings, ClientTlsSettings, HttpSettings, ListenerTlsSettings, LogSettings, OtlpSettings,
    RateLimitSettings, ServerTlsSettings, ShutdownSettings, cidr_list,
};

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

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub mode: Mode,
    pub public: PublicSettings,
    pub internal: InternalSettings,
    pub http: HttpSettings,
    pub storage: Storage,
    /// `None`: no diagnostics frames are written (no `[kinesis]` section in
    /// `cinemo config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<KinesisSettings>,
    pub otlp: OtlpSettings,
    pub shutdown: ShutdownSettings,
    pub log: LogSettings,
    pub batch: BatchSettings,
}

/// `[public]`. In a layer `listen` may be unset (`Listen` is
/// `Option<SocketAddr>`); once resolved it is the address to bind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PublicSettings<Listen = SocketAddr> {
    /// `0.0.0.0:8080`, or `127.0.0.1:8080` in `all` mode.
    pub listen: Listen,
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

impl Default for PublicSettings<Option<SocketAddr>> {
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

impl PublicSettings<Option<SocketAddr>> {
    /// The section with its listen address resolved.
    pub fn listening_on(self, listen: SocketAddr) -> PublicSettings {
        PublicSettings {
            listen,
            internal_url: self.internal_url,
            internal_connect_timeout_ms: self.internal_connect_timeout_ms,
            internal_timeout_ms: self.internal_timeout_ms,
            internal_pool_max_idle: self.internal_pool_max_idle,
            internal_http2: self.internal_http2,
            internal_connection_max_age_secs: self.internal_connection_max_age_secs,
            max_body_bytes: self.max_body_bytes,
            internal_tls: self.internal_tls,
            tls: self.tls,
            rate_limit: self.rate_limit,
            trusted_proxies: self.trusted_proxies,
        }
    }
}

/// `[internal]`; `Listen` as in `PublicSettings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalSettings<Listen = SocketAddr> {
    /// `0.0.0.0:8081`, or `127.0.0.1:8081` in `all` mode.
    pub listen: Listen,
    pub max_body_bytes: usize,
    pub tls: ServerTlsSettings,
}

impl Default for InternalSettings<Option<SocketAddr>> {
    fn default() -> Self {
        InternalSettings {
            listen: None,
            max_body_bytes: 1024 * 1024,
            tls: ServerTlsSettings::default(),
        }
    }
}

impl InternalSettings<Option<SocketAddr>> {
    /// The section with its listen address resolved.
    pub fn listening_on(self, listen: SocketAddr) -> InternalSettings {
        InternalSettings {
            listen,
            max_body_bytes: self.max_body_bytes,
            tls: self.tls,
        }
    }
}

/// The backend, with the keys it uses and no others (`storage.type`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Storage {
    Sqlite(SqlStorage),
    Postgres(SqlStorage),
    Mongodb(MongoStorage),
}

impl Storage {
    pub fn kind(&self) -> StorageType {
        match self {
            Storage::Sqlite(_) => StorageType::Sqlite,
            Storage::Postgres(_) => StorageType::Postgres,
            Storage::Mongodb(_) => StorageType::Mongodb,
        }
    }

    /// The connection string: a secret when it carries a password.
    pub fn url(&self) -> &str {
        match self {
            Storage::Sqlite(s) | Storage::Postgres(s) => &s.url,
            Storage::Mongodb(m) => &m.url,
        }
    }

    pub fn limits(&self) -> &StoreLimits {
        match self {
            Storage::Sqlite(s) | Storage::Postgres(s) => &s.limits,
            Storage::Mongodb(m) => &m.limits,
        }
    }

    pub(super) fn url_mut(&mut self) -> &mut String {
        match self {
            Storage::Sqlite(s) | Storage::Postgres(s) => &mut s.url,
            Storage::Mongodb(m) => &mut m.url,
        }
    }
}

/// SQLite or PostgreSQL.
#[derive(Debug, Clone, Serialize)]
pub struct SqlStorage {
    pub url: String,
    #[serde(flatten)]
    pub limits: StoreLimits,
}

#[derive(Debug, Clone, Serialize)]
pub struct MongoStorage {
    pub url: String,
    pub database: String,
    pub collection: String,
    #[serde(flatten)]
    pub limits: StoreLimits,
}

/// What every backend is bounded by.
#[derive(Debug, Clone, Serialize)]
pub struct StoreLimits {
    pub max_connections: u32,
    /// Wait for a connection (or MongoDB's server selection).
    pub connect_timeout_ms: u64,
    /// Deadline for one storage operation; past it the internal tier
    /// answers 504.
    pub timeout_ms: u64,
    /// Deadline for one batch insert (one transaction of up to
    /// `batch.max_items` documents), which takes longer than a single write.
    pub batch_timeout_ms: u64,
}

/// `[kinesis]`. In a layer the stream and the switch may be unset
/// (`KinesisSettings<Option<String>, Option<bool>>`); resolved, frames go
/// to `stream_name` (`Settings::kinesis` is `None` when they are off).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KinesisSettings<Stream = String, Enabled = ()> {
    /// Defaults to true once `stream_name` is set.
    #[serde(skip_serializing)]
    pub enabled: Enabled,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub stream_name: Stream,
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

impl Default for KinesisSettings<Option<String>, Option<bool>> {
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

impl KinesisSettings<Option<String>, Option<bool>> {
    /// The section of a sink that writes to `stream_name`.
    pub fn writing_to(self, stream_name: String) -> KinesisSettings {
        KinesisSettings {
            enabled: (),
            region: self.region,
            endpoint: self.endpoint,
            stream_name,
            partition_key: self.partition_key,
            buffer_capacity: self.buffer_capacity,
            batch_max_records: self.batch_max_records,
            flush_interval_ms: self.flush_interval_ms,
            max_backoff_ms: self.max_backoff_ms,
            call_timeout_ms: self.call_timeout_ms,
        }
    }
}
