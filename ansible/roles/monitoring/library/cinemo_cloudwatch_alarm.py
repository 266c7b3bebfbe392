#!/usr/bin/python
# -*- coding: utf-8 -*-
# CloudWatch metric and composite alarms from the API's own request shape.
# amazon.aws.cloudwatch_metric_alarm reports a change on every run for
# metric-math alarms and has no composite alarms; this module does both and
# is idempotent.

DOCUMENTATION = r"""
---
module: cinemo_cloudwatch_alarm
short_description: Idempotent CloudWatch metric (incl. metric math) and composite alarms
description:
  - O(spec) is the C(PutMetricAlarm) or C(PutCompositeAlarm) request without C(AlarmName),
    in the API's CamelCase.
  - The alarm is written only when a key given in O(spec) differs from what CloudWatch
    returns (actions and dimensions missing from O(spec) count as empty lists).
  - C(ActionsEnabled) is only compared when O(spec) sets it, so a re-run does not unmute an
    alarm that someone muted on purpose (docs/runbook.md).
  - O(alarms) writes many alarms in one call (one module start instead of one per alarm).
options:
  name: {type: str, description: Alarm name (or give O(alarms)).}
  alarms:
    type: list
    elements: dict
    description: Several alarms, each a dict with C(name) and C(spec) (and optionally C(kind), C(state)).
  kind: {type: str, choices: [metric, composite], default: metric, description: Which API.}
  spec: {type: dict, default: {}, description: The request body without AlarmName.}
  state: {type: str, choices: [present, absent], default: present, description: Present or absent.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
alarm: {description: the alarm as CloudWatch describes it after the change, returned: with name and when present, type: dict}
changed_alarms: {description: the names of the alarms written or deleted, returned: always, type: list}
"""

LIST_KEYS = ("AlarmActions", "OKActions", "InsufficientDataActions")
ALARM_TYPE = {"metric": ("MetricAlarm", "MetricAlarms"), "composite": ("CompositeAlarm", "CompositeAlarms")}


def _norm(value):
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        if items and all(isinstance(i, dict) and set(i) == {"Name", "Value"} for i in items):
            items = sorted(items, key=lambda d: d["Name"])
        return items
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _covers(existing, wanted):
    """True when every key of `wanted` has the same value in `existing`."""
    if isinstance(wanted, dict):
        return isinstance(existing, dict) and all(_covers(existing.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(existing, list) and len(existing) == len(wanted)
                and all(_covers(e, w) for e, w in zip(existing, wanted)))
    return existing == wanted


def describe(client, name, kind):
    alarm_type, key = ALARM_TYPE[kind]
    found = client.describe_alarms(AlarmNames=[name], AlarmTypes=[alarm_type])[key]
    return found[0] if found else None


def needs_update(existing, spec, kind):
    if existing is None:
        return True
    wanted = dict(spec)
    for key in LIST_KEYS:
        wanted.setdefault(key, [])
    if kind == "metric" and "Metrics" not in wanted:
        wanted.setdefault("Dimensions", [])
    return not _covers(_norm(existing), _norm(wanted))


def ensure_alarm(client, name, spec, kind="metric", state="present", check_mode=False):
    """Returns (changed, alarm-after)."""
    existing = describe(client, name, kind)
    if state == "absent":
        if existing and not check_mode:
            client.delete_alarms(AlarmNames=[name])
        return existing is not None, None
    if not needs_update(existing, spec, kind):
        return False, existing
    if not check_mode:
        put = client.put_metric_alarm if kind == "metric" else client.put_composite_alarm
        put(AlarmName=name, **spec)
        existing = describe(client, name, kind)
    return True, existing


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str"),
            alarms=dict(type="list", elements="dict"),
            kind=dict(type="str", default="metric", choices=["metric", "composite"]),
            spec=dict(type="dict", default={}),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_one_of=[("name", "alarms")],
        mutually_exclusive=[("name", "alarms")],
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("cloudwatch")
    if p["name"] is not None:
        wanted = [{"name": p["name"], "spec": p["spec"], "kind": p["kind"], "state": p["state"]}]
    else:
        wanted = p["alarms"]
    written, alarm = [], None
    for a in wanted:
        kind, name = a.get("kind", p["kind"]), a.get("name")
        if not name:
            module.fail_json(msg=f"an entry of alarms has no name: {a}")
        try:
            changed, alarm = ensure_alarm(client, name, a.get("spec") or {}, kind,
                                          a.get("state", p["state"]), module.check_mode)
        except Exception as e:  # botocore errors, with the API's message
            module.fail_json_aws(e, msg=f"{kind} alarm {name}")
        if changed:
            written.append(name)
    result = dict(changed=bool(written), changed_alarms=written)
    if p["name"] is not None:
        result["alarm"] = alarm or {}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
