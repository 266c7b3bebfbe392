"""The alarms around a rollout, as monitoring.yml renders them (moto has no
PutCompositeAlarm and evaluates no alarm, so the requests are checked against
the CloudWatch API model with botocore's Stubber, and their thresholds are
played through minute by minute the way CloudWatch evaluates M of N).

- The outage alarm is silenced during a rollout by its ActionsSuppressor, the
  deploy-in-progress alarm, which the rollout keeps in ALARM with a heartbeat:
  when the rollout stops, however it stops, the suppression ends by itself.
- deploy-unhealthy trips on a host that keeps failing and is replaced about
  every two minutes, and not on a host that fails a check while it boots."""

import importlib.util
import json

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from stack_helpers import ANSIBLE, play

ENV = "edge"
FACTS = {
    "monitoring_topic_arn": "arn:aws:sns:eu-central-1:123456789012:cinemo-edge-duty-manager",
    "monitoring_alb_dimension": "app/cinemo-edge-public/0123456789abcdef",
    "monitoring_nlb_dimension": "net/cinemo-edge-internal/0123456789abcdef",
    "monitoring_public_tg_dimension": "targetgroup/cinemo-edge-public/0123456789abcdef",
    "monitoring_internal_tg_dimension": "targetgroup/cinemo-edge-internal/0123456789abcdef",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("alarms")
    play(None, ENV, "monitoring_render.yml", {**FACTS, "out_dir": str(out)}, out)
    alarms = {a["name"]: a["spec"] for a in yaml.safe_load((out / "alarms.yml").read_text())}
    composite = yaml.safe_load((out / "composite.yml").read_text())
    rollout = json.loads((out / "rollout.json").read_text())
    return alarms, composite, rollout


def cloudwatch():
    return boto3.client("cloudwatch", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")


def evaluate(spec, minutes):
    """The alarm state after each minute, for one value a minute (None: no data),
    as CloudWatch evaluates M out of N one-minute periods."""
    n, m = spec["EvaluationPeriods"], spec.get("DatapointsToAlarm", spec["EvaluationPeriods"])
    assert spec.get("Period", 60) == 60 or all(q.get("MetricStat", {}).get("Period", 60) == 60 for q in spec.get("Metrics", []))
    op = {"GreaterThanOrEqualToThreshold": lambda v: v >= spec["Threshold"],
          "GreaterThanThreshold": lambda v: v > spec["Threshold"]}[spec["ComparisonOperator"]]
    missing_breaches = spec["TreatMissingData"] == "breaching"
    states = []
    for t in range(len(minutes)):
        window = minutes[max(0, t - n + 1):t + 1]
        breaching = sum(1 for v in window if (missing_breaches if v is None else op(v)))
        states.append("ALARM" if breaching >= m else "OK")
    return states


def test_every_alarm_request_passes_the_api_model(rendered):
    alarms, composite, _ = rendered
    cw = cloudwatch()
    with Stubber(cw) as stub:
        for name, spec in alarms.items():
            stub.add_response("put_metric_alarm", {})
            cw.put_metric_alarm(AlarmName=name, **spec)
        stub.add_response("put_composite_alarm", {})
        cw.put_composite_alarm(AlarmName=composite["name"], **composite["spec"])


def test_the_outage_alarm_is_suppressed_by_the_rollouts_heartbeat_alarm(rendered):
    alarms, composite, rollout = rendered
    spec = composite["spec"]
    assert spec["ActionsSuppressor"] == rollout["alarm"] == "cinemo-edge-deploy-in-progress"
    assert composite["name"] == rollout["outage"]
    assert rollout["alarm"] in alarms, "the suppressor alarm is created by monitoring.yml"
    # the suppressor may reach ALARM a minute or two after an outage starts
    assert spec["ActionsSuppressorWaitPeriod"] >= 120
    assert spec["AlarmActions"] == [FACTS["monitoring_topic_arn"]] == spec["OKActions"]
    for member in composite["members"]:
        assert f'ALARM("{member}")' in spec["AlarmRule"]
        assert alarms[member]["AlarmActions"] == [], f"{member} pages on its own"
    heartbeat = alarms[rollout["alarm"]]
    assert (heartbeat["Namespace"], heartbeat["MetricName"]) == (rollout["heartbeat"]["namespace"], rollout["heartbeat"]["metric"])
    assert heartbeat["Dimensions"] == [{"Name": k, "Value": v} for k, v in rollout["heartbeat"]["dimensions"].items()]
    assert heartbeat["AlarmActions"] == [] and heartbeat["OKActions"] == []


def test_a_dead_rollout_leaves_nothing_muted(rendered):
    alarms, composite, rollout = rendered
    spec = alarms[rollout["alarm"]]
    # the rollout beats every minute for ten minutes, then its controller dies
    minutes = [1.0] * 10 + [None] * 15
    states = evaluate(spec, minutes)
    assert states[:10] == ["ALARM"] * 10
    back_to_ok = states.index("OK", 10)
    assert spec["TreatMissingData"] == "notBreaching", "no heartbeat must mean no rollout"
    # suppression ends within the alarm's window plus the composite's extension
    silent = back_to_ok - 10 + composite["spec"]["ActionsSuppressorExtensionPeriod"] / 60
    assert silent <= 6, f"the outage alarm stays silent {silent} minutes after the rollout died"
    # and the rollout beats often enough to keep it in ALARM
    refresh = load("cinemo_deploy_heartbeat")
    assert refresh.Heartbeat(None, "", "", {}).every < spec["Period"]


def test_deploy_unhealthy_trips_on_a_host_that_keeps_failing(rendered):
    alarms, _, _ = rendered
    spec = alarms["cinemo-edge-deploy-unhealthy"]
    # each new host boots (a minute, not yet checked), fails its checks for about
    # two minutes until autoscaling replaces it, and so on
    failing = [0, 1, 1] * 4
    assert "ALARM" in evaluate(spec, failing), "a failing host replaced every ~2 minutes never trips the gate"
    assert evaluate(spec, failing).index("ALARM") <= 6


def test_deploy_unhealthy_ignores_a_host_that_fails_a_check_while_it_boots(rendered):
    alarms, _, _ = rendered
    spec = alarms["cinemo-edge-deploy-unhealthy"]
    # a healthy refresh of two hosts, each unhealthy for one minute while it starts
    booting = [0, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    assert "ALARM" not in evaluate(spec, booting)


def load(name):
    path = ANSIBLE / "roles" / "rollout" / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
