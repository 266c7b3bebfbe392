#!/usr/bin/python
# -*- coding: utf-8 -*-
# Mute or unmute alarms (DisableAlarmActions / EnableAlarmActions): the
# documented toggle that keeps the outage alarm from paging during a deploy.

DOCUMENTATION = r"""
---
module: cinemo_alarm_actions
short_description: Enable or disable the actions of CloudWatch alarms
description:
  - Alarms keep evaluating while muted; only their notifications stop.
  - Names that do not exist are returned in C(missing) and do not fail the task.
options:
  names: {type: list, elements: str, required: true, description: Alarm names.}
  enabled: {type: bool, required: true, description: true unmutes, false mutes.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
switched: {description: alarms whose actions were switched, returned: always, type: list}
missing: {description: names no alarm has, returned: always, type: list}
states: {description: name -> StateValue of each alarm found, returned: always, type: dict}
"""


def set_actions(client, names, enabled, check_mode=False):
    answer = client.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    alarms = answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", [])
    found = {a["AlarmName"]: a for a in alarms}
    switch = [n for n in names if n in found and bool(found[n].get("ActionsEnabled", True)) != enabled]
    if switch and not check_mode:
        (client.enable_alarm_actions if enabled else client.disable_alarm_actions)(AlarmNames=switch)
    return {
        "switched": switch,
        "missing": [n for n in names if n not in found],
        "states": {n: a.get("StateValue") for n, a in found.items()},
    }


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            enabled=dict(type="bool", required=True),
        ),
        supports_check_mode=True,
    )
    client = module.client("cloudwatch")
    try:
        result = set_actions(client, module.params["names"], module.params["enabled"], module.check_mode)
    except Exception as e:
        module.fail_json_aws(e, msg="switching alarm actions")
    module.exit_json(changed=bool(result["switched"]), **result)


if __name__ == "__main__":
    main()
