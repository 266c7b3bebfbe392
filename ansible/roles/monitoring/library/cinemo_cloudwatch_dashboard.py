#!/usr/bin/python
# -*- coding: utf-8 -*-
# A CloudWatch dashboard as code: no Ansible module exists for PutDashboard.

DOCUMENTATION = r"""
---
module: cinemo_cloudwatch_dashboard
short_description: Idempotent CloudWatch dashboard (PutDashboard)
description:
  - Writes the dashboard when its body differs (compared as parsed JSON) from the stored one.
options:
  name: {type: str, required: true, description: Dashboard name.}
  body: {type: raw, description: The dashboard body, a dict or a JSON string.}
  state: {type: str, choices: [present, absent], default: present, description: Present or absent.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
dashboard_arn: {returned: when present and not in check mode, type: str}
validation_messages: {returned: always, type: list}
"""

import json


def current_body(client, name):
    try:
        return json.loads(client.get_dashboard(DashboardName=name)["DashboardBody"])
    except client.exceptions.ResourceNotFound:
        return None
    except Exception as e:  # moto answers a missing dashboard with a generic error
        if "ResourceNotFound" in str(e) or "does not exist" in str(e):
            return None
        raise


def ensure_dashboard(client, name, body, state="present", check_mode=False):
    """Returns (changed, arn, validation messages)."""
    if isinstance(body, str):
        body = json.loads(body)
    existing = current_body(client, name)
    if state == "absent":
        if existing is not None and not check_mode:
            client.delete_dashboards(DashboardNames=[name])
        return existing is not None, None, []
    if existing == body:
        arn = client.get_dashboard(DashboardName=name).get("DashboardArn")
        return False, arn, []
    if check_mode:
        return True, None, []
    answer = client.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body, sort_keys=True))
    arn = client.get_dashboard(DashboardName=name).get("DashboardArn")
    return True, arn, answer.get("DashboardValidationMessages", [])


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            body=dict(type="raw"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[("state", "present", ["body"])],
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("cloudwatch")
    try:
        changed, arn, messages = ensure_dashboard(client, p["name"], p["body"], p["state"], module.check_mode)
    except Exception as e:
        module.fail_json_aws(e, msg=f"dashboard {p['name']}")
    module.exit_json(changed=changed, dashboard_arn=arn, validation_messages=messages)


if __name__ == "__main__":
    main()
