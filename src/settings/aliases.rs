//! The old Node services' `package.json` config keys, accepted in files.

use anyhow::bail;

/// (old section, old key) -> (new section, new key)
const RENAMES: &[(&str, &str, &str, &str)] = &[
    (
        "dependencies",
        "cinemoInternalUrl",
        "public",
        "internal_url",
    ),
    ("kinesis", "streamName", "kinesis", "stream_name"),
    ("kinesis", "partitionKey", "kinesis", "partition_key"),
    ("mongodb", "url", "storage", "url"),
    ("mongodb", "databaseName", "storage", "database"),
    ("mongodb", "collectionName", "storage", "collection"),
];

/// Moves old keys to their new names in place. An old key next to its new
/// spelling in the same file is ambiguous and an error. `service.port` stays
/// where it is: which listener it means depends on the mode.
pub fn rewrite_old_keys(table: &mut toml::Table) -> anyhow::Result<()> {
    let old_mongodb_url = table
        .get("mongodb")
        .and_then(|m| m.as_table())
        .is_some_and(|m| m.contains_key("url"));
    for (old_section, old_key, new_section, new_key) in RENAMES {
        let Some(value) = table
            .get_mut(*old_section)
            .and_then(|s| s.as_table_mut())
            .and_then(|s| s.remove(*old_key))
        else {
            continue;
        };
        let section = table
            .entry(new_section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section) = section.as_table_mut() else {
            bail!("`{new_section}` must be a section");
        };
        if section.contains_key(*new_key) {
            bail!(
                "both `{old_section}.{old_key}` (old name) and `{new_section}.{new_key}` are set; keep one"
            );
        }
        section.insert(new_key.to_string(), value);
    }
    for old_section in ["dependencies", "mongodb"] {
        if table
            .get(old_section)
            .and_then(|s| s.as_table())
            .is_some_and(|s| s.is_empty())
        {
            table.remove(old_section);
        }
    }
    if old_mongodb_url {
        // The old services only ever spoke MongoDB.
        if let Some(storage) = table.get_mut("storage").and_then(|s| s.as_table_mut()) {
            storage
                .entry("type")
                .or_insert_with(|| toml::Value::String("mongodb".into()));
        }
    }
    Ok(())
}
