//! From the merged layers to the settings the binary uses: mode-dependent
//! defaults, the `DATABASE_URL` / `MONGODB_URL` conventions, and
//! cross-field checks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail, ensure};

use super::file::{FileSettings, StorageSection};
use super::model::{
    KinesisSettings, Mode, MongoStorage, Settings, SqlStorage, Storage, StorageType, StoreLimits,
};

pub(super) fn resolve(
    mut file: FileSettings,
    vars: &HashMap<String, String>,
) -> anyhow::Result<Settings> {
    let (public_listen, internal_listen) = listeners(&mut file);
    let settings = Settings {
        mode: file.mode,
        public: file.public.listening_on(public_listen),
        internal: file.internal.listening_on(internal_listen),
        http: file.http,
        storage: storage(&file.storage, vars)?,
        kinesis: kinesis(file.kinesis)?,
        otlp: file.otlp,
        shutdown: file.shutdown,
        log: file.log,
        batch: file.batch,
    };
    validate(&settings)?;
    Ok(settings)
}

/// Both tiers' listen addresses: as set, from the old `service.port`, or
/// the defaults (both tiers of an `all` process stay on loopback).
fn listeners(f: &mut FileSettings) -> (SocketAddr, SocketAddr) {
    let host = if f.mode == Mode::All {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    if let Some(port) = f.service.port.take() {
        let target = if f.mode == Mode::Internal {
            &mut f.internal.listen
        } else {
            &mut f.public.listen
        };
        target.get_or_insert(SocketAddr::new(host, port));
    }
    (
        f.public.listen.unwrap_or(SocketAddr::new(host, 8080)),
        f.internal.listen.unwrap_or(SocketAddr::new(host, 8081)),
    )
}

fn storage(section: &StorageSection, vars: &HashMap<String, String>) -> anyhow::Result<Storage> {
    let env_url = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
    let database_url = env_url("DATABASE_URL");
    let mongodb_url = env_url("MONGODB_URL");
    let explicit_url = vars.contains_key("CINEMO__STORAGE__URL");

    let scheme_of = |url: &str, what: &str| {
        StorageType::from_url(url)
            .with_context(|| format!("{what} has an unknown scheme: {}", redact_url(url)))
    };
    let kind = match section.kind {
        Some(kind) => kind,
        // CINEMO__STORAGE__URL beats the conventions, which beat the files.
        None if explicit_url => {
            scheme_of(section.url.as_deref().unwrap_or_default(), "storage.url")?
        }
        None => match (&database_url, &mongodb_url, &section.url) {
            (Some(url), None, _) => scheme_of(url, "DATABASE_URL")?,
            (None, Some(_), _) => StorageType::Mongodb,
            (Some(_), Some(_), _) => bail!(
                "both DATABASE_URL and MONGODB_URL are set and storage.type is not: set storage.type (or CINEMO__STORAGE__TYPE) to choose"
            ),
            (None, None, Some(url)) => scheme_of(url, "storage.url")?,
            (None, None, None) => StorageType::Sqlite,
        },
    };

    let convention = match kind {
        StorageType::Sqlite | StorageType::Postgres => database_url,
        StorageType::Mongodb => mongodb_url,
    };
    let url = match (explicit_url, convention, &section.url) {
        (false, Some(convention), _) => convention,
        (_, _, Some(url)) => url.clone(),
        (_, _, None) if kind == StorageType::Sqlite => "sqlite://cinemo.db".to_owned(),
        (_, _, None) => bail!(
            "storage.type is {} but no connection string is set (storage.url, CINEMO__STORAGE__URL or {})",
            kind.as_str(),
            if kind == StorageType::Mongodb {
                "MONGODB_URL"
            } else {
                "DATABASE_URL"
            }
        ),
    };
    let named = StorageType::from_url(&url);
    if named != Some(kind) {
        bail!(
            "storage.type is {} but the storage URL {} {}",
            kind.as_str(),
            redact_url(&url),
            match named {
                Some(other) => format!("is a {} URL", other.as_str()),
                None => "has an unknown scheme".into(),
            }
        );
    }
    let limits = StoreLimits {
        max_connections: section.max_connections,
        connect_timeout_ms: section.connect_timeout_ms,
        timeout_ms: section.timeout_ms,
        batch_timeout_ms: section.batch_timeout_ms,
    };
    Ok(match kind {
        StorageType::Sqlite => Storage::Sqlite(SqlStorage { url, limits }),
        StorageType::Postgres => Storage::Postgres(SqlStorage { url, limits }),
        StorageType::Mongodb => Storage::Mongodb(MongoStorage {
            url,
            database: section.database.clone(),
            collection: section.collection.clone(),
            limits,
        }),
    })
}

/// The sink's settings when diagnostics frames are on: `kinesis.enabled`,
/// which defaults to true once a stream is named.
fn kinesis(
    mut section: KinesisSettings<Option<String>, Option<bool>>,
) -> anyhow::Result<Option<KinesisSettings>> {
    if !section.enabled.unwrap_or(section.stream_name.is_some()) {
        return Ok(None);
    }
    let Some(stream_name) = section.stream_name.take().filter(|n| !n.is_empty()) else {
        bail!("kinesis.enabled is true but kinesis.stream_name is not set");
    };
    ensure!(
        section.buffer_capacity > 0,
        "kinesis.buffer_capacity must be greater than 0"
    );
    ensure!(
        (1..=500).contains(&section.batch_max_records),
        "kinesis.batch_max_records must be between 1 and 500 (the PutRecords limit)"
    );
    Ok(Some(section.writing_to(stream_name)))
}

fn validate(s: &Settings) -> anyhow::Result<()> {
    if s.mode.runs_public() {
        let url = reqwest::Url::parse(&s.public.internal_url).with_context(|| {
            format!(
                "public.internal_url {:?} is not a URL",
                s.public.internal_url
            )
        })?;
        ensure!(
            matches!(url.scheme(), "http" | "https") && url.host().is_some(),
            "public.internal_url must be an http:// or https:// URL with a host, not {:?}",
            s.public.internal_url
        );
        let tls = &s.public.internal_tls;
        ensure!(
            tls.cert_file.is_some() == tls.key_file.is_some(),
            "public.internal_tls.cert_file and public.internal_tls.key_file must be set together"
        );
        if tls.cert_file.is_some() || tls.ca_file.is_some() {
            // `all` mode ignores internal_url: it calls its own listener.
            ensure!(
                s.mode == Mode::All || url.scheme() == "https",
                "public.internal_tls is set, so public.internal_url must use https://"
            );
            // Only the private CA may vouch for the internal tier, never the web PKI.
            ensure!(
                tls.ca_file.is_some(),
                "public.internal_tls.ca_file must be set: the internal tier is verified against the private CA only"
            );
        }
        if s.mode == Mode::Public && tls.required {
            ensure!(
                tls.cert_file.is_some() && tls.ca_file.is_some(),
                "public.internal_tls.required is true but public.internal_tls.cert_file/key_file/ca_file are not set \
                 (set them, or set public.internal_tls.required = false to allow plain HTTP to the internal tier)"
            );
        }
        let listener = &s.public.tls;
        ensure!(
            listener.cert_file.is_some() == listener.key_file.is_some(),
            "public.tls.cert_file and public.tls.key_file must be set together"
        );
        let rl = &s.public.rate_limit;
        ensure!(
            !rl.enabled || (rl.per_second > 0 && rl.burst > 0),
            "public.rate_limit.per_second and burst must be greater than 0"
        );
    }
    let tls = &s.internal.tls;
    ensure!(
        tls.cert_file.is_some() == tls.key_file.is_some(),
        "internal.tls.cert_file and internal.tls.key_file must be set together"
    );
    ensure!(
        tls.client_ca_file.is_none() || tls.cert_file.is_some(),
        "internal.tls.client_ca_file needs internal.tls.cert_file and key_file"
    );
    if s.mode == Mode::Internal && tls.required {
        ensure!(
            tls.cert_file.is_some() && tls.client_ca_file.is_some(),
            "internal.tls.required is true but internal.tls.cert_file/key_file/client_ca_file are not set \
             (set them, or set internal.tls.required = false to serve plain HTTP)"
        );
    }
    if s.mode == Mode::All && tls.cert_file.is_some() {
        ensure!(
            s.public.internal_tls.ca_file.is_some(),
            "internal.tls is set in all mode, so the public tier needs public.internal_tls (ca_file, and cert_file/key_file when a client CA is set)"
        );
    }
    if s.mode == Mode::All && s.public.listen.port() != 0 {
        ensure!(
            s.public.listen != s.internal.listen,
            "public.listen and internal.listen are both {} in all mode",
            s.public.listen
        );
    }
    for (name, value) in [
        (
            "public.internal_connect_timeout_ms",
            s.public.internal_connect_timeout_ms,
        ),
        ("public.internal_timeout_ms", s.public.internal_timeout_ms),
        (
            "public.internal_connection_max_age_secs",
            s.public.internal_connection_max_age_secs,
        ),
        (
            "storage.connect_timeout_ms",
            s.storage.limits().connect_timeout_ms,
        ),
        ("storage.timeout_ms", s.storage.limits().timeout_ms),
        (
            "storage.batch_timeout_ms",
            s.storage.limits().batch_timeout_ms,
        ),
        ("batch.internal_timeout_ms", s.batch.internal_timeout_ms),
        (
            "http.request_head_timeout_ms",
            s.http.request_head_timeout_ms,
        ),
        (
            "http.request_body_timeout_ms",
            s.http.request_body_timeout_ms,
        ),
        ("shutdown.timeout_secs", s.shutdown.timeout_secs),
    ] {
        ensure!(value > 0, "{name} must be greater than 0");
    }
    ensure!(
        s.http.max_uri_bytes >= 256,
        "http.max_uri_bytes is too small"
    );
    ensure!(
        s.storage.limits().max_connections > 0,
        "storage.max_connections must be greater than 0"
    );
    ensure!(
        s.public.max_body_bytes >= 64,
        "public.max_body_bytes is too small"
    );
    ensure!(
        s.internal.max_body_bytes >= 64,
        "internal.max_body_bytes is too small"
    );
    ensure!(
        s.batch.max_items > 0,
        "batch.max_items must be greater than 0"
    );
    ensure!(
        s.batch.max_concurrent > 0,
        "batch.max_concurrent must be greater than 0"
    );
    ensure!(
        s.batch.max_body_bytes >= s.public.max_body_bytes.max(s.internal.max_body_bytes),
        "batch.max_body_bytes must be at least public.max_body_bytes and internal.max_body_bytes"
    );
    // The public tier must not give up on a batch the internal tier is still
    // allowed to commit: the client would retry a batch that was stored.
    if s.mode == Mode::All {
        ensure!(
            s.batch.internal_timeout_ms > s.storage.limits().batch_timeout_ms,
            "batch.internal_timeout_ms ({}) must be greater than storage.batch_timeout_ms ({})",
            s.batch.internal_timeout_ms,
            s.storage.limits().batch_timeout_ms
        );
    }
    ensure!(
        (0.0..=1.0).contains(&s.otlp.trace_sample_ratio),
        "otlp.trace_sample_ratio must be between 0.0 and 1.0, got {}",
        s.otlp.trace_sample_ratio
    );
    if s.otlp.enabled {
        reqwest::Url::parse(&s.otlp.endpoint)
            .with_context(|| format!("otlp.endpoint {:?} is not a URL", s.otlp.endpoint))?;
    }
    s.log.filter()?;
    Ok(())
}

/// A connection string with its password replaced by `***`, safe to print.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host/... ; the password may contain ':' but not '@'
    // unescaped, so the last '@' before the path ends the credentials.
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let redacted = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    format!("{}{}{}", &url[..scheme_end + 3], redacted, &rest[at..])
}
