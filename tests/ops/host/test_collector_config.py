"""The otelcol-contrib config the otel_collector role installs, checked statically."""
import ipaddress

import pytest
import yaml

PIPELINES = {"metrics", "traces", "logs"}


@pytest.fixture(scope="module")
def cfg(repo):
    with open(repo / "ansible" / "roles" / "otel_collector" / "files" / "config.yaml") as f:
        return yaml.safe_load(f)


def defined(section):
    return set(section or {})


def test_pipelines_reference_only_defined_components(cfg):
    pipelines = cfg["service"]["pipelines"]
    assert set(pipelines) == PIPELINES
    for name, p in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            missing = set(p.get(kind, [])) - defined(cfg.get(kind))
            assert not missing, f"pipeline {name} uses undefined {kind}: {missing}"
        assert p["receivers"] and p["exporters"], name
    assert set(cfg["service"].get("extensions", [])) <= defined(cfg.get("extensions"))


def test_every_defined_component_is_used(cfg):
    pipelines = cfg["service"]["pipelines"].values()
    for kind in ("receivers", "processors", "exporters"):
        used = {c for p in pipelines for c in p.get(kind, [])}
        assert defined(cfg[kind]) == used, kind


def test_memory_limiter_is_first_and_batch_last(cfg):
    for name, p in cfg["service"]["pipelines"].items():
        assert p["processors"][0] == "memory_limiter", name
        assert p["processors"][-1] == "batch", name
        assert "resourcedetection" in p["processors"], name


def _hosts(node):
    """Every host in an `endpoint` under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "endpoint" and isinstance(v, str):
                yield v.rsplit(":", 1)[0]
            else:
                yield from _hosts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _hosts(v)


def test_receivers_and_extensions_bind_loopback_only(cfg):
    hosts = list(_hosts(cfg["receivers"])) + list(_hosts(cfg.get("extensions")))
    assert hosts
    for host in hosts:
        assert ipaddress.ip_address(host.strip("[]")).is_loopback, host
    proto = cfg["receivers"]["otlp"]["protocols"]
    assert proto["http"]["endpoint"] == "127.0.0.1:4318"
    assert proto["grpc"]["endpoint"] == "127.0.0.1:4317"
    for reader in cfg["service"]["telemetry"]["metrics"]["readers"]:
        assert reader["pull"]["exporter"]["prometheus"]["host"] == "127.0.0.1"


def test_ec2_resource_detection(cfg):
    assert "ec2" in cfg["processors"]["resourcedetection"]["detectors"]


def test_awsemf_namespace_dimensions_and_delta_counters(cfg):
    emf = cfg["exporters"]["awsemf"]
    assert emf["namespace"] == "Cinemo"
    assert emf["retain_initial_value_of_delta_metric"] is True
    assert emf["resource_to_telemetry_conversion"]["enabled"] is True
    for decl in emf["metric_declarations"]:
        for dims in decl["dimensions"]:
            assert {"environment", "mode"} <= set(dims), dims
    attrs = {a["key"]: a for a in cfg["processors"]["resource/cinemo"]["attributes"]}
    assert attrs["environment"]["value"] == "${env:CINEMO_ENV}"
    assert attrs["mode"]["value"] == "${env:CINEMO__MODE}"


def test_metrics_go_to_cloudwatch_and_kinesis(cfg):
    assert set(cfg["service"]["pipelines"]["metrics"]["exporters"]) == {"awsemf", "awskinesis"}
    kin = cfg["exporters"]["awskinesis"]
    # The stream of this environment (names.yml: kinesis_stream_names.metrics).
    assert kin["aws"]["stream_name"] == "cinemo-${env:CINEMO_ENV}-metrics"
    assert kin["encoding"]["name"] == "otlp_proto"
    assert kin["max_records_per_batch"] <= 500


def test_traces_go_to_xray_and_journald_logs_to_cloudwatch_logs(cfg):
    pipes = cfg["service"]["pipelines"]
    assert pipes["traces"]["exporters"] == ["awsxray"]
    assert pipes["traces"]["receivers"] == ["otlp"]
    assert pipes["logs"]["receivers"] == ["journald"]
    assert pipes["logs"]["exporters"] == ["awscloudwatchlogs"]
    assert "cinemo.service" in cfg["receivers"]["journald"]["units"]
    assert cfg["exporters"]["awscloudwatchlogs"]["log_group_name"] == "/cinemo/${env:CINEMO_ENV}/app"
