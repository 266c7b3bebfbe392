//! The configuration layers: files and the environment, each read into a
//! TOML table that the `config` crate merges directly (as a `Source`), so
//! no layer is turned back into text.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};

use super::aliases;

/// One layer read on its own, so errors can name it.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub name: String,
    pub table: toml::Table,
}

pub(super) fn read_file(path: &Path) -> anyhow::Result<Layer> {
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
pub(super) fn env_layer(vars: &HashMap<String, String>) -> anyhow::Result<Layer> {
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
    let (last, parents) = path.split_last().context("an empty key path")?;
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

impl config::Source for Layer {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        Ok(self
            .table
            .iter()
            .map(|(k, v)| (k.clone(), to_config(&self.name, v)))
            .collect())
    }
}

/// A TOML value as the `config` crate holds it, remembering its layer.
fn to_config(origin: &String, value: &toml::Value) -> config::Value {
    let kind = match value {
        toml::Value::String(s) => config::ValueKind::String(s.clone()),
        toml::Value::Integer(i) => config::ValueKind::I64(*i),
        toml::Value::Float(f) => config::ValueKind::Float(*f),
        toml::Value::Boolean(b) => config::ValueKind::Boolean(*b),
        toml::Value::Datetime(d) => config::ValueKind::String(d.to_string()),
        toml::Value::Array(items) => {
            config::ValueKind::Array(items.iter().map(|v| to_config(origin, v)).collect())
        }
        toml::Value::Table(table) => config::ValueKind::Table(
            table
                .iter()
                .map(|(k, v)| (k.clone(), to_config(origin, v)))
                .collect(),
        ),
    };
    config::Value::new(Some(origin), kind)
}
