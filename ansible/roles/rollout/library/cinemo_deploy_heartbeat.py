#!/usr/bin/python
# -*- coding: utf-8 -*-
# The rollout's heartbeat: a metric the deploy-in-progress alarm watches.
# While it beats (every minute) that alarm is in ALARM and suppresses the
# outage alarm's actions; when the rollout stops, however it stops (success,
# failure, a killed controller), the beats stop and the alarm returns to OK
# by itself: nothing is left muted. cinemo_instance_refresh keeps beating
# while it waits for a refresh.

DOCUMENTATION = r"""
---
module: cinemo_deploy_heartbeat
short_description: Publish the rollout heartbeat and wait until the suppressor alarm is in ALARM
options:
  namespace: {type: str, required: true, description: CloudWatch namespace of the heartbeat.}
  metric: {type: str, required: true, description: Metric name of the heartbeat.}
  dimensions: {type: dict, default: {}, description: Its dimensions (name to value).}
  alarm: {type: str, description: The alarm that must reach ALARM before the rollout goes on.}
  wait_timeout: {type: int, default: 300, description: Seconds to wait for O(alarm) (CloudWatch evaluates a minute or two late).}
  poll_interval: {type: int, default: 10, description: Seconds between checks.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
state: {description: the alarm's state when the module returned, returned: when alarm is given, type: str}
waited: {description: seconds waited for the alarm, returned: always, type: int}
"""

import time


def beat(client, namespace, metric, dimensions):
    client.put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": metric, "Value": 1.0, "Unit": "Count",
        "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted(dimensions.items())]}])


class Heartbeat:
    """Beats at most once per `every` seconds; call it as often as convenient."""

    def __init__(self, client, namespace, metric, dimensions, every=50, clock=time.monotonic):
        self.client, self.namespace, self.metric, self.dimensions = client, namespace, metric, dimensions
        self.every, self.clock, self.last = every, clock, None

    def __call__(self):
        now = self.clock()
        if self.last is None or now - self.last >= self.every:
            beat(self.client, self.namespace, self.metric, self.dimensions)
            self.last = now


def alarm_state(client, name):
    found = client.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    if not found:
        raise LookupError(f"alarm {name} not found: run monitoring.yml for this environment first")
    return found[0]["StateValue"]


def wait_for_alarm(client, heartbeat, name, wait_timeout=300, poll_interval=10, sleep=time.sleep,
                   clock=time.monotonic):
    """Beat until `name` is in ALARM. Returns (state, seconds waited)."""
    start = clock()
    while True:
        heartbeat()
        state = alarm_state(client, name)
        if state == "ALARM" or clock() - start >= wait_timeout:
            return state, int(clock() - start)
        sleep(poll_interval)


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            namespace=dict(type="str", required=True),
            metric=dict(type="str", required=True),
            dimensions=dict(type="dict", default={}),
            alarm=dict(type="str"),
            wait_timeout=dict(type="int", default=300),
            poll_interval=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if module.check_mode:
        module.exit_json(changed=False, waited=0)
    client = module.client("cloudwatch")
    heartbeat = Heartbeat(client, p["namespace"], p["metric"], p["dimensions"])
    try:
        if not p["alarm"]:
            heartbeat()
            module.exit_json(changed=False, waited=0)
        state, waited = wait_for_alarm(client, heartbeat, p["alarm"], p["wait_timeout"], p["poll_interval"])
    except LookupError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # botocore errors
        module.fail_json_aws(e, msg="rollout heartbeat")
    if state != "ALARM":
        module.fail_json(msg=(
            f"{p['alarm']} is {state} {waited}s after the first heartbeat: the outage alarm would page "
            "during the rollout. Check that monitoring.yml created it on "
            f"{p['namespace']} {p['metric']} {p['dimensions']}."), state=state, waited=waited)
    # A metric is not state the play owns: publishing it changes nothing.
    module.exit_json(changed=False, state=state, waited=waited)


if __name__ == "__main__":
    main()
