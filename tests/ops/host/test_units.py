"""What the cinemo units promise, read key by key (scoring and verify run in host.sh)."""
import pytest

from unit_sandbox import parse_unit


def unit(repo, name):
    """{section: {key: [values in order]}}; systemd keys may repeat."""
    return parse_unit(repo / "systemd" / name)


@pytest.fixture(scope="module")
def cinemo(repo):
    return unit(repo, "cinemo.service")


def test_cinemo_is_notify_with_watchdog_and_restart(cinemo):
    s = cinemo["Service"]
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"][0].endswith("s")
    assert s["Restart"] == ["on-failure"]


def test_cinemo_stop_timeout_outlasts_default_shutdown_deadline(cinemo):
    assert int(cinemo["Service"]["TimeoutStopSec"][0].rstrip("s")) > 30


def test_cinemo_runs_as_its_own_user_with_declared_dirs_and_env(cinemo):
    s = cinemo["Service"]
    assert s["User"] == ["cinemo"] and s["Group"] == ["cinemo"]
    assert s["StateDirectory"] == ["cinemo"]
    assert s["ConfigurationDirectory"] == ["cinemo"]
    assert s["Environment"] == ["CINEMO_CONFIG_DIR=/etc/cinemo"]
    assert s["EnvironmentFile"] == ["/etc/cinemo/cinemo.env", "-/run/cinemo/secrets.env"]
    assert s["ExecStart"] == ["/usr/local/bin/cinemo serve"], "mode comes from CINEMO__MODE, not --mode"


def test_cinemo_waits_for_the_ssm_bootstrap(cinemo, repo):
    assert "cinemo-bootstrap.service" in cinemo["Unit"]["Requires"][0].split()
    assert "cinemo-bootstrap.service" in cinemo["Unit"]["After"][0].split()
    boot = unit(repo, "cinemo-bootstrap.service")
    assert boot["Service"]["Type"] == ["oneshot"]
    assert "cinemo.service" in boot["Unit"]["Before"][0].split()


def test_cinemo_may_lower_its_export_threads_priority_and_nothing_more(cinemo):
    """setpriority and sched_setscheduler are in @resources, which the filter
    denies; cinemo needs them (telemetry export threads at nice 19 and under
    SCHED_IDLE). Filters apply in order, so they must be allowed again after
    the deny list; with no capabilities cinemo can only ever lower a
    priority, and RestrictRealtime= keeps the realtime policies out."""
    s = cinemo["Service"]
    filters = s["SystemCallFilter"]
    deny = next(i for i, f in enumerate(filters) if f.startswith("~") and "@resources" in f.split())
    allowed_after = [i for i, f in enumerate(filters)
                     if sorted(f.split()) == ["sched_setscheduler", "setpriority"]]
    assert allowed_after and allowed_after[0] > deny, filters
    assert s["RestrictRealtime"] == ["yes"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["NoNewPrivileges"] == ["yes"]


def test_collector_reads_the_dimensions_from_the_host(repo):
    col = unit(repo, "otelcol-contrib.service")["Service"]
    assert "-/etc/cinemo/cinemo.env" in col["EnvironmentFile"]
    assert col["ExecStart"] == ["/usr/bin/otelcol-contrib --config=/etc/otelcol-contrib/config.yaml"]
