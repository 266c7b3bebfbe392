//! Layered configuration: built-in defaults, `<dir>/default.toml`,
//! `<dir>/<CINEMO_ENV>.toml`, `--config FILE`, `CINEMO__SECTION__KEY`
//! environment variables, then `--mode`. See docs/configuration.md.
//!
//! `file` is what one layer may say, `layers` reads and merges them,
//! `resolve` turns the merged layers into `model::Settings`, the fully
//! typed settings the binary uses.

mod aliases;
mod file;
mod layers;
mod model;
mod resolve;
mod sections;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};

use file::FileSettings;
pub use model::{
    InternalSettings, KinesisSettings, Mode, MongoStorage, PublicSettings, Settings, SqlStorage,
    Storage, StorageType, StoreLimits,
};
pub use resolve::redact_url;
pub use sections::{
    BatchSettings, ClientTlsSettings, HttpSettings, ListenerTlsSettings, LogFormat, LogSettings,
    OtlpSettings, RateLimitSettings, ServerTlsSettings, ShutdownSettings,
};

/// Where the layers come from. `from_process` reads the real environment;
/// tests build one by hand.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config_dir: PathBuf,
    pub env_name: Option<String>,
    pub config_file: Option<PathBuf>,
    pub mode: Option<Mode>,
    pub vars: HashMap<String, String>,
}

impl Sources {
    pub fn from_process(config_file: Option<PathBuf>, mode: Option<Mode>) -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Sources {
            config_dir: vars
                .get("CINEMO_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config")),
            env_name: vars.get("CINEMO_ENV").filter(|v| !v.is_empty()).cloned(),
            config_file,
            mode,
            vars,
        }
    }
}

pub fn load(sources: &Sources) -> anyhow::Result<Settings> {
    let mut layers = Vec::new();
    let default_file = sources.config_dir.join("default.toml");
    if default_file.is_file() {
        layers.push(layers::read_file(&default_file)?);
    }
    if let Some(env) = &sources.env_name {
        if !env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("CINEMO_ENV={env:?} is not a valid environment name");
        }
        let file = sources.config_dir.join(format!("{env}.toml"));
        if !file.is_file() {
            bail!(
                "CINEMO_ENV={env} but {} does not exist (set CINEMO_CONFIG_DIR to the directory holding {env}.toml)",
                file.display()
            );
        }
        layers.push(layers::read_file(&file)?);
    }
    if let Some(file) = &sources.config_file {
        layers.push(layers::read_file(file)?);
    }
    layers.push(layers::env_layer(&sources.vars)?);

    let mut merged = config::Config::builder();
    for layer in layers {
        // Alone first, so an unknown key or a wrong type names its layer.
        let alone = config::Config::builder()
            .add_source(layer.clone())
            .build()
            .with_context(|| format!("in {}", layer.name))?;
        deserialize_checked(alone, &layer.name)?;
        merged = merged.add_source(layer);
    }
    let merged = merged.build().context("merging configuration layers")?;
    let mut file = deserialize_checked(merged, "the merged configuration")?;
    if let Some(mode) = sources.mode {
        file.mode = mode;
    }
    resolve::resolve(file, &sources.vars)
}

fn deserialize_checked(cfg: config::Config, name: &str) -> anyhow::Result<FileSettings> {
    let mut unknown = Vec::new();
    let settings: FileSettings =
        serde_ignored::deserialize(cfg, |path| unknown.push(path.to_string()))
            .map_err(|e| anyhow::anyhow!("invalid value in {name}: {e}"))?;
    if !unknown.is_empty() {
        let keys = unknown
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        bail!("unknown configuration key {keys} in {name}");
    }
    Ok(settings)
}

impl Settings {
    /// The effective configuration as TOML with secrets redacted, for
    /// `cinemo config`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        let url = shown.storage.url_mut();
        *url = redact_url(url);
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
