#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Scaling policies and scheduled actions of one autoscaling group.

No amazon.aws/community.aws module reads these back, and verify.yml must.
"""

DOCUMENTATION = r"""
module: cinemo_autoscaling_info
short_description: Read an autoscaling group's scaling policies and scheduled actions
description:
  - Returns the target-tracking and other scaling policies and the scheduled
    actions of one autoscaling group, as the AWS API reports them.
options:
  name:
    description: The autoscaling group's name.
    type: str
    required: true
  region:
    description: AWS region.
    type: str
  endpoint_url:
    description: Endpoint override (a local emulator in tests).
    type: str
author: cinemo
"""

EXAMPLES = r"""
- name: Read the public tier's scaling
  cinemo_autoscaling_info:
    name: cinemo-dev-public
    region: eu-west-1
"""

RETURN = r"""
policies:
  description: DescribePolicies ScalingPolicies, unchanged.
  returned: always
  type: list
  elements: dict
scheduled_actions:
  description: DescribeScheduledActions ScheduledUpdateGroupActions, unchanged.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

try:
    import boto3
except ImportError:  # pragma: no cover - reported by fail_json below
    boto3 = None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str"),
            endpoint_url=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg="boto3 is required")
    client = boto3.client(
        "autoscaling",
        region_name=module.params["region"],
        endpoint_url=module.params["endpoint_url"] or None,
    )
    name = module.params["name"]
    try:
        policies = client.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]
        actions = client.describe_scheduled_actions(AutoScalingGroupName=name)["ScheduledUpdateGroupActions"]
    except Exception as e:  # noqa: BLE001 - reported to the operator as is
        module.fail_json(msg=f"cannot read autoscaling group {name}: {e}")
    module.exit_json(
        changed=False,
        policies=policies,
        scheduled_actions=[{k: str(v) if hasattr(v, "isoformat") else v for k, v in a.items()} for a in actions],
    )


if __name__ == "__main__":
    main()
