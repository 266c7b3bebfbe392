//! What one configuration layer may say (a file, or the `CINEMO__*`
//! environment), before defaults and conventions are resolved: the keys of
//! docs/configuration.md, each optional where the binary decides later.

use std::net::SocketAddr;

use serde::Deserialize;

use super::model::{InternalSettings, KinesisSettings, Mode, PublicSettings, StorageType};
use super::sections::{BatchSettings, HttpSettings, LogSettings, OtlpSettings, ShutdownSettings};

/// One layer (a file, the environment), or all of them merged.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct FileSettings {
    pub mode: Mode,
    pub public: PublicSettings<Option<SocketAddr>>,
    pub internal: InternalSettings<Option<SocketAddr>>,
    pub http: HttpSettings,
    pub storage: StorageSection,
    pub kinesis: KinesisSettings<Option<String>, Option<bool>>,
    pub otlp: OtlpSettings,
    pub shutdown: ShutdownSettings,
    pub log: LogSettings,
    pub batch: BatchSettings,
    /// The old Node key `service.port`; folded into the listen address of
    /// the tier being run.
    pub service: LegacyService,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct LegacyService {
    pub port: Option<u16>,
}

/// `[storage]` as files write it: every backend's keys in one section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSection {
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

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
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
