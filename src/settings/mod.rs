//! Layered configuration: built-in defaults, `<dir>/default.toml`,
//! `<dir>/<CINEMO_ENV>.toml`, `--config FILE`, `CINEMO__SECTION__KEY`
//! environment variables, then `--mode`. See docs/configuration.md.

mod aliases;
mod model;
mod resolve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub use model::*;
pub use resolve::redact_url;

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

/// One layer read and checked on its own, so errors can name it.
struct Layer {
    name: String,
    table: toml::Table,
}

pub fn load(sources: &Sources) -> anyhow::Result<Settings> {
    let mut layers = Vec::new();
    let default_file = sources.config_dir.join("default.toml");
    if default_file.is_file() {
        layers.push(read_file(&default_file)?);
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
        layers.push(read_file(&file)?);
    }
    if let Some(file) = &sources.config_file {
        layers.push(read_file(file)?);
    }
    layers.push(env_layer(&sources.vars)?);

    let mut builder = config::Config::builder();
    for layer in &layers {
        check_layer(layer)?;
        let text = toml::to_string(&layer.table).context("re-encoding a configuration layer")?;
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    let merged = builder.build().context("merging configuration layers")?;
    let mut settings = deserialize_checked(merged, "the merged configuration")?;
    if let Some(mode) = sources.mode {
        settings.mode = mode;
    }
    resolve::resolve(&mut settings, &sources.vars)?;
    Ok(settings)
}

fn read_file(path: &Path) -> anyhow::Result<Layer> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{name} is not valid TOML"))?;
    aliases::rewrite_old_keys(&mut table).with_context(|| format!("in {name}"))?;
    Ok(Layer { name, table })
}

/// `CINEMO__SECTION__KEY=value` variables as one layer. Values are typed the
/// way the config crate types environment values (numbers and booleans are
/// parsed), so `CINEMO__SHUTDOWN__TIMEOUT_SECS=60` works.
fn env_layer(vars: &HashMap<String, String>) -> anyhow::Result<Layer> {
    let mut table = toml::Table::new();
    let mut names: Vec<_> = vars.keys().filter(|k| k.starts_with("CINEMO__")).collect();
    names.sort();
    for name in names {
        let path: Vec<String> = name["CINEMO__".len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            bail!("environment variable {name} is malformed (expected CINEMO__SECTION__KEY)");
        }
        let value = env_value(&vars[name]);
        insert_path(&mut table, &path, value)
            .with_context(|| format!("environment variable {name}"))?;
    }
    Ok(Layer {
        name: "the environment (CINEMO__* variables)".into(),
        table,
    })
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    let (last, parents) = path.split_last().expect("path is never empty");
    let mut cur = table;
    for p in parents {
        cur = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{p}` is both a value and a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

/// Deserializes one layer alone and fails on keys the settings do not have,
/// naming the key and the layer.
fn check_layer(layer: &Layer) -> anyhow::Result<()> {
    let text = toml::to_string(&layer.table)?;
    let cfg = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .with_context(|| format!("in {}", layer.name))?;
    deserialize_checked(cfg, &layer.name).map(|_| ())
}

fn deserialize_checked(cfg: config::Config, name: &str) -> anyhow::Result<Settings> {
    let mut unknown = Vec::new();
    let settings: Settings = serde_ignored::deserialize(cfg, |path| unknown.push(path.to_string()))
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
        shown.storage.url = shown.storage.url.as_deref().map(redact_url);
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }

    pub fn kinesis_enabled(&self) -> bool {
        self.kinesis
            .enabled
            .unwrap_or(self.kinesis.stream_name.is_some())
    }
}

#[cfg(test)]
mod tests;
