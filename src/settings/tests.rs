use std::collections::HashMap;
use std::path::Path;

use super::*;

fn sources(dir: &Path) -> Sources {
    Sources {
        config_dir: dir.to_path_buf(),
        ..Sources::default()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn built_in_defaults_match_the_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let s = load(&sources(dir.path())).unwrap();
    assert_eq!(s.mode, Mode::All);
    assert_eq!(s.public.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.internal.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(s.storage.kind(), StorageType::Sqlite);
    assert_eq!(s.storage.url(), "sqlite://cinemo.db");
    assert!(s.kinesis.is_none());
    assert!(s.otlp.enabled);
    assert_eq!(s.shutdown.timeout_secs, 30);

    let mut src = sources(dir.path());
    src.mode = Some(Mode::Public);
    let s = load(&src).unwrap();
    assert_eq!(s.public.listen.to_string(), "0.0.0.0:8080");
}

#[test]
fn layers_apply_in_order_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "default.toml",
        "mode = \"internal\"\n[shutdown]\ntimeout_secs = 5\n[log]\nlevel = \"warn\"\n",
    );
    write(
        dir.path(),
        "edge.toml",
        "[shutdown]\ntimeout_secs = 6\n[public]\ninternal_timeout_ms = 700\n",
    );
    let file = write(dir.path(), "mine.toml", "[shutdown]\ntimeout_secs = 7\n");
    let mut src = sources(dir.path());
    src.env_name = Some("edge".into());
    src.config_file = Some(file);
    src.vars = vars(&[
        ("CINEMO__PUBLIC__INTERNAL_TIMEOUT_MS", "900"),
        ("CINEMO__MODE", "public"),
    ]);
    let s = load(&src).unwrap();
    assert_eq!(s.shutdown.timeout_secs, 7, "--config beats the env file");
    assert_eq!(s.public.internal_timeout_ms, 900, "environment beats files");
    assert_eq!(
        s.log.level, "warn",
        "default.toml applies where nothing overrides it"
    );
    assert_eq!(s.mode, Mode::Public);
    src.mode = Some(Mode::All);
    assert_eq!(
        load(&src).unwrap().mode,
        Mode::All,
        "--mode beats every layer"
    );
}

#[test]
fn unknown_keys_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.toml",
        "[public]\nlisten = \"0.0.0.0:1\"\nlisen = \"x\"\n",
    );
    let mut src = sources(dir.path());
    src.config_file = Some(file.clone());
    let err = format!("{:#}", load(&src).unwrap_err());
    assert!(err.contains("public.lisen"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");

    let mut src = sources(dir.path());
    src.vars = vars(&[("CINEMO__STORAGE__URLL", "x")]);
    let err = format!("{:#}", load(&src).unwrap_err());
    assert!(
        err.contains("storage.urll") && err.contains("environment"),
        "{err}"
    );
}

#[test]
fn a_missing_env_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = sources(dir.path());
    src.env_name = Some("stagin".into());
    let err = format!("{:#}", load(&src).unwrap_err());
    assert!(err.contains("stagin.toml"), "{err}");
}

#[test]
fn old_node_keys_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "old.toml",
        r#"
[service]
port = 3000
[dependencies]
cinemoInternalUrl = "http://internal.example:3001"
[kinesis]
region = "eu-west-1"
streamName = "diag"
partitionKey = "pk"
[mongodb]
url = "mongodb://db.example:27017"
databaseName = "olddb"
collectionName = "oldcache"
"#,
    );
    let mut src = sources(dir.path());
    src.config_file = Some(file);
    src.mode = Some(Mode::Public);
    let s = load(&src).unwrap();
    assert_eq!(s.public.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(s.public.internal_url, "http://internal.example:3001");
    let kinesis = s.kinesis.as_ref().expect("a stream name turns Kinesis on");
    assert_eq!(kinesis.stream_name, "diag");
    assert_eq!(kinesis.partition_key.as_deref(), Some("pk"));
    let Storage::Mongodb(mongo) = &s.storage else {
        panic!("mongodb.url picks MongoDB: {:?}", s.storage)
    };
    assert_eq!(mongo.database, "olddb");
    assert_eq!(mongo.collection, "oldcache");

    src.mode = Some(Mode::Internal);
    let s = load(&src).unwrap();
    assert_eq!(s.internal.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(s.public.listen.to_string(), "0.0.0.0:8080");
}

#[test]
fn old_and_new_spelling_together_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "both.toml",
        "[kinesis]\nstreamName = \"a\"\nstream_name = \"b\"\n",
    );
    let mut src = sources(dir.path());
    src.config_file = Some(file);
    let err = format!("{:#}", load(&src).unwrap_err());
    assert!(err.contains("kinesis.streamName"), "{err}");
}

#[test]
fn database_url_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let load_with = |pairs: &[(&str, &str)]| {
        let mut src = sources(dir.path());
        src.vars = vars(pairs);
        load(&src)
    };
    let s = load_with(&[("DATABASE_URL", "postgres://u:pw@db/cinemo")]).unwrap();
    assert_eq!(s.storage.kind(), StorageType::Postgres);
    assert_eq!(s.storage.url(), "postgres://u:pw@db/cinemo");

    let s = load_with(&[("MONGODB_URL", "mongodb://db:27017")]).unwrap();
    assert_eq!(s.storage.kind(), StorageType::Mongodb);

    let err = load_with(&[
        ("DATABASE_URL", "postgres://db/x"),
        ("MONGODB_URL", "mongodb://db"),
    ])
    .unwrap_err();
    assert!(format!("{err:#}").contains("storage.type"), "{err:#}");

    // An explicit type always wins and picks its own convention.
    let s = load_with(&[
        ("CINEMO__STORAGE__TYPE", "mongodb"),
        ("DATABASE_URL", "postgres://db/x"),
        ("MONGODB_URL", "mongodb://db"),
    ])
    .unwrap();
    assert_eq!(s.storage.url(), "mongodb://db");

    let err = load_with(&[
        ("CINEMO__STORAGE__TYPE", "postgres"),
        ("CINEMO__STORAGE__URL", "mongodb://u:secret@db"),
    ])
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("mongodb URL"), "{err}");
    assert!(
        !err.contains("secret"),
        "a password leaked into an error: {err}"
    );

    let err = load_with(&[("CINEMO__STORAGE__TYPE", "postgres")]).unwrap_err();
    assert!(format!("{err:#}").contains("DATABASE_URL"));
}

#[test]
fn cross_field_checks() {
    let dir = tempfile::tempdir().unwrap();
    let load_with = |pairs: &[(&str, &str)]| {
        let mut src = sources(dir.path());
        src.vars = vars(pairs);
        load(&src).map_err(|e| format!("{e:#}"))
    };
    assert!(
        load_with(&[("CINEMO__PUBLIC__INTERNAL_URL", "ftp://x")])
            .unwrap_err()
            .contains("http")
    );
    assert!(
        load_with(&[("CINEMO__KINESIS__ENABLED", "true")])
            .unwrap_err()
            .contains("stream_name")
    );
    assert!(
        load_with(&[("CINEMO__INTERNAL__TLS__CERT_FILE", "/x.pem")])
            .unwrap_err()
            .contains("key_file")
    );
    assert!(
        load_with(&[("CINEMO__STORAGE__TIMEOUT_MS", "0")])
            .unwrap_err()
            .contains("timeout_ms")
    );
    assert!(
        load_with(&[("CINEMO__LOG__LEVEL", "loud=[")])
            .unwrap_err()
            .contains("log.level")
    );
    assert!(
        load_with(&[("CINEMO__MODE", "sideways")])
            .unwrap_err()
            .contains("mode")
    );
}

#[test]
fn redacts_passwords_only() {
    assert_eq!(
        redact_url("postgres://u:p%40ss@db:5432/x"),
        "postgres://u:***@db:5432/x"
    );
    assert_eq!(
        redact_url("mongodb://u:a:b@h1,h2/?tls=true"),
        "mongodb://u:***@h1,h2/?tls=true"
    );
    assert_eq!(redact_url("mongodb://h1/x"), "mongodb://h1/x");
    assert_eq!(redact_url("sqlite://cinemo.db"), "sqlite://cinemo.db");
    let dir = tempfile::tempdir().unwrap();
    let mut src = sources(dir.path());
    src.vars = vars(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]);
    let shown = load(&src).unwrap().to_redacted_toml();
    assert!(
        !shown.contains("hunter2") && shown.contains("u:***@db"),
        "{shown}"
    );
}

/// Settings from the built-in defaults and these environment variables.
fn load_env(dir: &Path, pairs: &[(&str, &str)]) -> Result<Settings, String> {
    let mut src = sources(dir);
    src.vars = vars(pairs);
    load(&src).map_err(|e| format!("{e:#}"))
}

#[test]
fn batch_settings_have_defaults_and_are_cross_checked() {
    let dir = tempfile::tempdir().unwrap();
    let load_with = |pairs: &[(&str, &str)]| load_env(dir.path(), pairs);
    let s = load_with(&[]).unwrap();
    assert_eq!(s.batch.max_items, 100_000);
    assert_eq!(s.storage.limits().batch_timeout_ms, 60_000);
    let s = load_with(&[("CINEMO__BATCH__MAX_ITEMS", "10")]).unwrap();
    assert_eq!(s.batch.max_items, 10);
    let err = load_with(&[("CINEMO__BATCH__INTERNAL_TIMEOUT_MS", "1000")]).unwrap_err();
    assert!(err.contains("batch.internal_timeout_ms"), "{err}");
    let err = load_with(&[("CINEMO__BATCH__MAX_BODY_BYTES", "100")]).unwrap_err();
    assert!(err.contains("batch.max_body_bytes"), "{err}");
    assert!(load_with(&[("CINEMO__BATCH__MAX_CONCURRENT", "0")]).is_err());
}

#[test]
fn a_log_level_that_is_no_level_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let load_with = |level: &str| load_env(dir.path(), &[("CINEMO__LOG__LEVEL", level)]);
    for good in [
        "info",
        "DEBUG",
        "warn,cinemo::kinesis=info",
        "cinemo=debug,info",
        "off",
    ] {
        assert_eq!(load_with(good).unwrap().log.level, good);
    }
    // tracing alone would take these for target names and log nothing.
    for bad in ["inof", "verbose", "info,cinemo", "cinemo=loud"] {
        let err = load_with(bad).unwrap_err();
        assert!(
            err.contains("log.level") && err.contains("neither a level"),
            "{bad}: {err}"
        );
    }
    let s = load_env(dir.path(), &[]).unwrap();
    assert!(s.log.access, "access log on by default");
    let s = load_env(dir.path(), &[("CINEMO__LOG__ACCESS", "false")]).unwrap();
    assert!(!s.log.access);
}

#[test]
fn trace_sample_ratio_is_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let src = sources(dir.path());
    assert_eq!(load(&src).unwrap().otlp.trace_sample_ratio, 0.1);
    for bad in ["1.5", "-0.1"] {
        let file = write(
            dir.path(),
            "ratio.toml",
            &format!("[otlp]\ntrace_sample_ratio = {bad}\n"),
        );
        let mut src = sources(dir.path());
        src.config_file = Some(file);
        let err = format!("{:#}", load(&src).unwrap_err());
        assert!(err.contains("otlp.trace_sample_ratio"), "{bad}: {err}");
    }
}

#[test]
fn the_link_to_the_internal_tier_defaults_to_http2_with_connection_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let load_with = |pairs: &[(&str, &str)]| load_env(dir.path(), pairs);
    let s = load_with(&[]).unwrap();
    assert!(s.public.internal_http2);
    assert_eq!(s.public.internal_connection_max_age_secs, 20);
    let s = load_with(&[("CINEMO__PUBLIC__INTERNAL_HTTP2", "false")]).unwrap();
    assert!(!s.public.internal_http2);
    let err = load_with(&[("CINEMO__PUBLIC__INTERNAL_CONNECTION_MAX_AGE_SECS", "0")]).unwrap_err();
    assert!(
        err.contains("public.internal_connection_max_age_secs"),
        "{err}"
    );
}

#[test]
fn environment_values_take_the_type_of_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = load_env(
        dir.path(),
        &[
            ("CINEMO__KINESIS__STREAM_NAME", "42"),
            ("CINEMO__KINESIS__PARTITION_KEY", "true"),
            ("CINEMO__OTLP__TRACE_SAMPLE_RATIO", "0.5"),
            ("CINEMO__OTLP__EXPORT_INTERVAL_MS", "1500"),
        ],
    )
    .unwrap();
    let kinesis = s.kinesis.expect("a stream turns Kinesis on");
    assert_eq!(kinesis.stream_name, "42");
    assert_eq!(kinesis.partition_key.as_deref(), Some("true"));
    assert_eq!(s.otlp.trace_sample_ratio, 0.5);
    assert_eq!(s.otlp.export_interval_ms, 1500);
}

#[test]
fn each_backend_keeps_only_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let shown = |pairs: &[(&str, &str)]| -> toml::Table {
        let s = load_env(dir.path(), pairs).unwrap();
        toml::from_str(&s.to_redacted_toml()).unwrap()
    };
    let sqlite = shown(&[]);
    let storage = sqlite["storage"].as_table().unwrap();
    assert_eq!(storage["type"].as_str(), Some("sqlite"));
    assert!(!storage.contains_key("database"), "{storage:?}");
    assert_eq!(storage["timeout_ms"].as_integer(), Some(2000));
    let mongo = shown(&[("MONGODB_URL", "mongodb://db")]);
    let storage = mongo["storage"].as_table().unwrap();
    assert_eq!(storage["type"].as_str(), Some("mongodb"));
    assert_eq!(storage["collection"].as_str(), Some("cache"));
    assert!(
        !sqlite.contains_key("kinesis"),
        "Kinesis is off: no section"
    );
}

#[test]
fn the_printed_configuration_loads_back_as_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first = load_env(
        dir.path(),
        &[
            ("CINEMO__KINESIS__STREAM_NAME", "diag"),
            ("CINEMO__MODE", "public"),
        ],
    )
    .unwrap()
    .to_redacted_toml();
    let file = write(dir.path(), "printed.toml", &first);
    let mut src = sources(dir.path());
    src.config_file = Some(file);
    assert_eq!(load(&src).unwrap().to_redacted_toml(), first);
}
