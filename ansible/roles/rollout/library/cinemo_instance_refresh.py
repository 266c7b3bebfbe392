#!/usr/bin/python
# -*- coding: utf-8 -*-
# Start an EC2 Auto Scaling instance refresh with the options the amazon.aws
# module cannot set (auto rollback, alarm gating, checkpoints, bake time,
# MaxHealthyPercentage), wait for it, report progress and the final status.

DOCUMENTATION = r"""
---
module: cinemo_instance_refresh
short_description: Launch-before-terminate instance refresh with automatic rollback, and wait for it
description:
  - Calls C(StartInstanceRefresh) with a specific launch template version as the desired
    configuration, then polls C(DescribeInstanceRefreshes) until the refresh ends or the
    timeout passes.
  - C(Successful) returns normally; C(Cancelled), C(Failed), C(RollbackSuccessful),
    C(RollbackFailed) and a timeout fail the task with the status reason.
  - Progress (status, percentage, reason, checkpoints) is returned as C(history), logged to
    syslog and, when O(progress_file) is set, appended to that file as it happens
    (C(tail -f) it while the play waits).
options:
  name:
    description: Auto Scaling group name.
    type: str
    required: true
  launch_template_name:
    description: Launch template the desired configuration points at.
    type: str
    required: true
  launch_template_version:
    description: A numbered version (never C($Latest)/C($Default): auto rollback needs a fixed one).
    type: str
    required: true
  min_healthy_percentage:
    type: int
    default: 100
  max_healthy_percentage:
    type: int
    default: 200
  instance_warmup:
    type: int
    default: 120
  checkpoint_percentages:
    type: list
    elements: int
    default: [50, 100]
  checkpoint_delay:
    description: Seconds to wait at each checkpoint (bake between batches).
    type: int
    default: 300
  bake_time:
    description: Seconds to keep watching the alarms after the last instance is replaced.
    type: int
    default: 300
  skip_matching:
    type: bool
    default: true
  auto_rollback:
    type: bool
    default: true
  alarms:
    description: CloudWatch alarm names that roll the refresh back when they go to ALARM.
    type: list
    elements: str
    default: []
  scale_in_protected_instances:
    type: str
    choices: [Refresh, Ignore, Wait]
    default: Ignore
  standby_instances:
    type: str
    choices: [Terminate, Ignore, Wait]
    default: Ignore
  wait:
    type: bool
    default: true
  wait_timeout:
    type: int
    default: 3600
  poll_interval:
    type: int
    default: 15
  timeout_action:
    description: What to do with a refresh still running at the timeout.
    type: str
    choices: [rollback, cancel, none]
    default: rollback
  progress_file:
    description: File that progress lines are appended to while waiting.
    type: path
  heartbeat:
    description:
      - While waiting, publish this metric (value 1) at most once a minute, as cinemo_deploy_heartbeat
        does, so the deploy-in-progress alarm stays in ALARM for as long as this module waits.
      - A dict with C(namespace), C(metric) and C(dimensions).
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
instance_refresh_id: {description: the refresh started, returned: always, type: str}
status: {description: final status, or the last one seen at a timeout, returned: always, type: str}
status_reason: {description: AWS's reason for the status, returned: always, type: str}
percentage_complete: {returned: always, type: int}
timed_out: {returned: always, type: bool}
history: {description: one entry per change of status, percentage or reason, returned: always, type: list}
"""

import time

try:
    from botocore.exceptions import ClientError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports a missing botocore
    ClientError = Exception

TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")
FAILED = ("Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")


class RefreshError(Exception):
    """A refresh that could not start, or ended anywhere but Successful."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def build_request(name, template_name, template_version, opts):
    """The StartInstanceRefresh request. `opts` uses the module's option names."""
    version = str(template_version)
    if not version.isdigit():
        raise RefreshError(
            f"launch_template_version must be a version number, not {version!r}: "
            "automatic rollback needs the previous and the new version pinned"
        )
    checkpoints = list(opts.get("checkpoint_percentages") or [])
    if checkpoints:
        if checkpoints != sorted(set(checkpoints)) or checkpoints[-1] != 100:
            raise RefreshError(
                f"checkpoint_percentages must be unique, ascending and end at 100, got {checkpoints}"
            )
    min_healthy = opts.get("min_healthy_percentage", 100)
    max_healthy = opts.get("max_healthy_percentage", 200)
    if not 100 <= max_healthy <= 200 or max_healthy - min_healthy > 100 or max_healthy <= min_healthy:
        raise RefreshError(
            f"min/max healthy {min_healthy}/{max_healthy}: launch-before-terminate needs "
            "max_healthy_percentage above min_healthy_percentage, at most 200 and at most 100 apart"
        )
    alarms = list(opts.get("alarms") or [])
    if opts.get("auto_rollback", True) and not alarms:
        # Auto rollback still fires on a failed refresh, but without alarms a
        # bad build that keeps passing health checks is never rolled back.
        raise RefreshError("auto_rollback without alarms: give the deployment alarms in `alarms`")
    prefs = {
        "MinHealthyPercentage": min_healthy,
        "MaxHealthyPercentage": max_healthy,
        "InstanceWarmup": opts.get("instance_warmup", 120),
        "SkipMatching": opts.get("skip_matching", True),
        "AutoRollback": opts.get("auto_rollback", True),
        "ScaleInProtectedInstances": opts.get("scale_in_protected_instances", "Ignore"),
        "StandbyInstances": opts.get("standby_instances", "Ignore"),
        "BakeTime": opts.get("bake_time", 300),
    }
    if checkpoints:
        prefs["CheckpointPercentages"] = checkpoints
        prefs["CheckpointDelay"] = opts.get("checkpoint_delay", 300)
    if alarms:
        prefs["AlarmSpecification"] = {"Alarms": alarms}
    return {
        "AutoScalingGroupName": name,
        "Strategy": "Rolling",
        "DesiredConfiguration": {
            "LaunchTemplate": {"LaunchTemplateName": template_name, "Version": version},
        },
        "Preferences": prefs,
    }


def start_refresh(client, request):
    try:
        return client.start_instance_refresh(**request)["InstanceRefreshId"]
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "InstanceRefreshInProgress":
            raise RefreshError(
                f"{request['AutoScalingGroupName']}: another instance refresh is already running. "
                "Wait for it (aws autoscaling describe-instance-refreshes) or cancel it "
                "(aws autoscaling cancel-instance-refresh) and run the rollout again."
            ) from e
        raise RefreshError(f"{request['AutoScalingGroupName']}: StartInstanceRefresh failed: {e}") from e


def describe_refresh(client, name, refresh_id):
    found = client.describe_instance_refreshes(
        AutoScalingGroupName=name, InstanceRefreshIds=[refresh_id]
    )["InstanceRefreshes"]
    if not found:
        raise RefreshError(f"{name}: instance refresh {refresh_id} not found")
    return found[0]


def _snapshot(refresh, elapsed):
    reason = refresh.get("StatusReason", "") or ""
    entry = {
        "elapsed": int(elapsed),
        "status": refresh.get("Status", "Pending"),
        "percentage_complete": refresh.get("PercentageComplete", 0) or 0,
        "instances_to_update": refresh.get("InstancesToUpdate"),
        "status_reason": reason,
        "checkpoint": "checkpoint" in reason.lower(),
    }
    rollback = refresh.get("RollbackDetails")
    if rollback:
        entry["rollback_reason"] = rollback.get("RollbackReason", "")
    return entry


def format_entry(name, entry):
    line = (
        f"{name}: +{entry['elapsed']}s {entry['status']} {entry['percentage_complete']}%"
        f" ({entry['instances_to_update']} to update)"
    )
    if entry["checkpoint"]:
        line += " [checkpoint: baking]"
    if entry["status_reason"]:
        line += f" - {entry['status_reason']}"
    if entry.get("rollback_reason"):
        line += f" - rollback: {entry['rollback_reason']}"
    return line


def wait_for_refresh(client, name, refresh_id, wait_timeout=3600, poll_interval=15,
                     timeout_action="rollback", sleep=time.sleep, clock=time.monotonic,
                     report=None, heartbeat=None):
    """Poll until the refresh ends. Returns the result dict; raises RefreshError
    for every ending but Successful (result attached). `heartbeat` is called
    on every poll (it decides itself how often to publish)."""
    start = clock()
    history = []
    last_key = None
    while True:
        if heartbeat:
            heartbeat()
        refresh = describe_refresh(client, name, refresh_id)
        entry = _snapshot(refresh, clock() - start)
        key = (entry["status"], entry["percentage_complete"], entry["status_reason"])
        if key != last_key:
            history.append(entry)
            last_key = key
            if report:
                report(format_entry(name, entry))
        result = {
            "instance_refresh_id": refresh_id,
            "status": entry["status"],
            "status_reason": entry["status_reason"],
            "percentage_complete": entry["percentage_complete"],
            "rollback_reason": entry.get("rollback_reason", ""),
            "timed_out": False,
            "history": history,
        }
        if entry["status"] == "Successful":
            return result
        if entry["status"] in FAILED:
            why = entry.get("rollback_reason") or entry["status_reason"] or "no reason given"
            raise RefreshError(
                f"{name}: instance refresh {refresh_id} ended {entry['status']} at "
                f"{entry['percentage_complete']}%: {why}",
                result,
            )
        if clock() - start >= wait_timeout:
            result["timed_out"] = True
            action = _on_timeout(client, name, timeout_action)
            result["timeout_action"] = action
            raise RefreshError(
                f"{name}: instance refresh {refresh_id} still {entry['status']} at "
                f"{entry['percentage_complete']}% after {wait_timeout}s; {action}",
                result,
            )
        sleep(poll_interval)


def _on_timeout(client, name, action):
    try:
        if action == "rollback":
            client.rollback_instance_refresh(AutoScalingGroupName=name)
            return "rollback requested (previous launch template version is being restored)"
        if action == "cancel":
            client.cancel_instance_refresh(AutoScalingGroupName=name)
            return "cancel requested (instances already replaced keep the new AMI)"
    except ClientError as e:
        return f"{action} request failed: {e}"
    return "left running (timeout_action=none): watch it with aws autoscaling describe-instance-refreshes"


def _heartbeat(cloudwatch, spec, clock=time.monotonic, every=50):
    """A callable that publishes spec's metric at most every `every` seconds."""
    state = {"last": None}

    def beat():
        now = clock()
        if state["last"] is None or now - state["last"] >= every:
            cloudwatch.put_metric_data(Namespace=spec["namespace"], MetricData=[{
                "MetricName": spec["metric"], "Value": 1.0, "Unit": "Count",
                "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted((spec.get("dimensions") or {}).items())]}])
            state["last"] = now

    return beat


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            launch_template_name=dict(type="str", required=True),
            launch_template_version=dict(type="str", required=True),
            min_healthy_percentage=dict(type="int", default=100),
            max_healthy_percentage=dict(type="int", default=200),
            instance_warmup=dict(type="int", default=120),
            checkpoint_percentages=dict(type="list", elements="int", default=[50, 100]),
            checkpoint_delay=dict(type="int", default=300),
            bake_time=dict(type="int", default=300),
            skip_matching=dict(type="bool", default=True),
            auto_rollback=dict(type="bool", default=True),
            alarms=dict(type="list", elements="str", default=[]),
            scale_in_protected_instances=dict(type="str", default="Ignore", choices=["Refresh", "Ignore", "Wait"]),
            standby_instances=dict(type="str", default="Ignore", choices=["Terminate", "Ignore", "Wait"]),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=3600),
            poll_interval=dict(type="int", default=15),
            timeout_action=dict(type="str", default="rollback", choices=["rollback", "cancel", "none"]),
            progress_file=dict(type="path"),
            heartbeat=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        request = build_request(p["name"], p["launch_template_name"], p["launch_template_version"], p)
    except RefreshError as e:
        module.fail_json(msg=str(e))
    if module.check_mode:
        module.exit_json(changed=True, request=request, status="NotStarted", history=[])

    progress = open(p["progress_file"], "a", encoding="utf-8") if p["progress_file"] else None

    def report(line):
        module.log(line)
        if progress:
            progress.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + line + "\n")
            progress.flush()

    client = module.client("autoscaling")
    heartbeat = None
    if p["heartbeat"]:
        heartbeat = _heartbeat(module.client("cloudwatch"), p["heartbeat"])
    try:
        refresh_id = start_refresh(client, request)
        report(f"{p['name']}: started instance refresh {refresh_id} to "
               f"{p['launch_template_name']} version {p['launch_template_version']}")
        if not p["wait"]:
            module.exit_json(changed=True, instance_refresh_id=refresh_id, status="Pending",
                             request=request, history=[], timed_out=False)
        result = wait_for_refresh(client, p["name"], refresh_id, p["wait_timeout"],
                                  p["poll_interval"], p["timeout_action"], report=report,
                                  heartbeat=heartbeat)
    except RefreshError as e:
        module.fail_json(msg=str(e), request=request, **e.result)
    finally:
        if progress:
            progress.close()
    module.exit_json(changed=True, request=request, **result)


if __name__ == "__main__":
    main()
