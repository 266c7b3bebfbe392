#!/usr/bin/python
# -*- coding: utf-8 -*-
# The deletions destroy.yml needs that no Ansible module does in one step:
# every alarm and dashboard under a name prefix (composite alarms first, as
# they name the others), a load balancer with deletion protection on (and its
# target groups), a Route 53 zone with its records, every SSM parameter under
# a path, every VPC endpoint of a VPC (and waiting until their network
# interfaces are gone, which subnets wait for), a KMS key by its alias (the
# alias deleted at once, so a new provision can make its key; the key
# scheduled for deletion, restorable until then).

DOCUMENTATION = r"""
---
module: cinemo_teardown
short_description: Delete what destroy.yml tears down in more than one API call
options:
  kind:
    type: str
    required: true
    choices: [alarms, load_balancer, hosted_zone, dns_record, ssm_path, vpc_endpoints, kms_alias]
    description: What to delete.
  name:
    type: str
    required: true
    description:
      - C(alarms) the name prefix of alarms and dashboards; C(load_balancer) its name;
        C(hosted_zone) the zone name; C(dns_record) the record's name (in O(zone)); C(ssm_path) the path; C(vpc_endpoints) the VPC id;
        C(kms_alias) the alias (C(alias/...)).
  private_zone: {type: bool, default: true, description: For C(hosted_zone) and C(dns_record), a private or a public zone.}
  zone: {type: str, description: For C(dns_record), the zone the record is in (the zone itself stays).}
  target_groups: {type: list, elements: str, default: [], description: For C(load_balancer), target group names to delete after it.}
  wait_timeout: {type: int, default: 600, description: Seconds to wait for load balancers and endpoints to be gone.}
  pending_days: {type: int, default: 7, description: For C(kms_alias), days before AWS deletes the key (7 to 30).}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
deleted: {description: what was deleted (names, ids or ARNs), returned: always, type: list}
"""

import time


def _gone(exc):
    text = str(exc)
    return any(k in text for k in ("NotFound", "does not exist", "NoSuchHostedZone", "ResourceNotFound"))


def delete_alarms(cw, prefix, check_mode=False):
    deleted = []
    for kind in ("CompositeAlarm", "MetricAlarm"):  # composites name the others
        names = []
        for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=[kind]):
            names += [a["AlarmName"] for a in page.get("CompositeAlarms", []) + page.get("MetricAlarms", [])]
        for i in range(0, len(names), 100):
            if not check_mode:
                cw.delete_alarms(AlarmNames=names[i:i + 100])
        deleted += names
    # the dashboard is named like the prefix without its last dash (cinemo-<env>)
    stem = prefix.rstrip("-")
    boards = [d["DashboardName"] for d in cw.list_dashboards(DashboardNamePrefix=stem).get("DashboardEntries", [])
              if d["DashboardName"] == stem or d["DashboardName"].startswith(prefix)]
    if boards and not check_mode:
        cw.delete_dashboards(DashboardNames=boards)
    return deleted + [f"dashboard {b}" for b in boards]


def delete_load_balancer(elb, name, target_groups, wait_timeout=600, check_mode=False, sleep=time.sleep):
    deleted = []
    try:
        lbs = elb.describe_load_balancers(Names=[name])["LoadBalancers"]
    except Exception as e:
        if not _gone(e):
            raise
        lbs = []
    for lb in lbs:
        arn = lb["LoadBalancerArn"]
        if not check_mode:
            elb.modify_load_balancer_attributes(
                LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
            elb.delete_load_balancer(LoadBalancerArn=arn)
            deadline = time.monotonic() + wait_timeout
            while time.monotonic() < deadline:
                try:
                    if not elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]:
                        break
                except Exception as e:
                    if _gone(e):
                        break
                    raise
                sleep(10)
        deleted.append(arn)
    for tg_name in target_groups:
        try:
            tgs = elb.describe_target_groups(Names=[tg_name])["TargetGroups"]
        except Exception as e:
            if not _gone(e):
                raise
            tgs = []
        for tg in tgs:
            if not check_mode:
                elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
            deleted.append(tg["TargetGroupArn"])
    return deleted


def delete_hosted_zone(r53, name, private, check_mode=False):
    wanted = name.rstrip(".") + "."
    zones = []
    for page in r53.get_paginator("list_hosted_zones").paginate():
        zones += [z for z in page["HostedZones"] if z["Name"] == wanted and z["Config"].get("PrivateZone", False) == private]
    deleted = []
    for zone in zones:
        records = []
        for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone["Id"]):
            records += [r for r in page["ResourceRecordSets"]
                        if not (r["Type"] in ("SOA", "NS") and r["Name"] == wanted)]
        if records and not check_mode:
            r53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in records]})
        if not check_mode:
            r53.delete_hosted_zone(Id=zone["Id"])
        deleted += [r["Name"] for r in records] + [zone["Id"]]
    return deleted


def _zones(r53, name, private):
    wanted = name.rstrip(".") + "."
    out = []
    for page in r53.get_paginator("list_hosted_zones").paginate():
        out += [z for z in page["HostedZones"] if z["Name"] == wanted and z["Config"].get("PrivateZone", False) == private]
    return out


def delete_dns_record(r53, zone, record, private=False, check_mode=False):
    """The A and AAAA records named `record` in `zone`; the zone stays."""
    wanted = record.rstrip(".") + "."
    deleted = []
    for z in _zones(r53, zone, private):
        records = [r for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=z["Id"])
                   for r in page["ResourceRecordSets"] if r["Name"] == wanted and r["Type"] in ("A", "AAAA")]
        if records and not check_mode:
            r53.change_resource_record_sets(HostedZoneId=z["Id"], ChangeBatch={
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in records]})
        deleted += [f"{r['Name']} {r['Type']}" for r in records]
    return deleted


def delete_ssm_path(ssm, path, check_mode=False):
    names = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        names += [p["Name"] for p in page["Parameters"]]
    for i in range(0, len(names), 10):
        if not check_mode:
            ssm.delete_parameters(Names=names[i:i + 10])
    return names


def delete_vpc_endpoints(ec2, vpc_id, wait_timeout=600, check_mode=False, sleep=time.sleep):
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    ids = [e["VpcEndpointId"] for e in found if e.get("State", "").lower() not in ("deleted", "deleting")]
    if ids and not check_mode:
        ec2.delete_vpc_endpoints(VpcEndpointIds=ids)
        deadline = time.monotonic() + wait_timeout
        while time.monotonic() < deadline:
            left = [e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
                    if e.get("State", "").lower() != "deleted"]
            if not left:
                break
            sleep(10)
    return ids


def delete_kms_alias(kms, alias, pending_days=7, check_mode=False):
    aliases = [a for page in kms.get_paginator("list_aliases").paginate() for a in page["Aliases"]
               if a["AliasName"] == alias]
    if not aliases or not aliases[0].get("TargetKeyId"):
        return []
    key_id = aliases[0]["TargetKeyId"]
    if not check_mode:
        kms.delete_alias(AliasName=alias)
        if kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] != "PendingDeletion":
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=pending_days)
    return [alias, key_id]


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            kind=dict(type="str", required=True,
                      choices=["alarms", "load_balancer", "hosted_zone", "dns_record", "ssm_path", "vpc_endpoints",
                               "kms_alias"]),
            zone=dict(type="str"),
            name=dict(type="str", required=True),
            private_zone=dict(type="bool", default=True),
            target_groups=dict(type="list", elements="str", default=[]),
            wait_timeout=dict(type="int", default=600),
            pending_days=dict(type="int", default=7),
        ),
        supports_check_mode=True,
    )
    p, check = module.params, module.check_mode
    try:
        if p["kind"] == "alarms":
            deleted = delete_alarms(module.client("cloudwatch"), p["name"], check)
        elif p["kind"] == "load_balancer":
            deleted = delete_load_balancer(module.client("elbv2"), p["name"], p["target_groups"], p["wait_timeout"], check)
        elif p["kind"] == "hosted_zone":
            deleted = delete_hosted_zone(module.client("route53"), p["name"], p["private_zone"], check)
        elif p["kind"] == "dns_record":
            if not p["zone"]:
                module.fail_json(msg="kind=dns_record needs zone")
            deleted = delete_dns_record(module.client("route53"), p["zone"], p["name"], p["private_zone"], check)
        elif p["kind"] == "ssm_path":
            deleted = delete_ssm_path(module.client("ssm"), p["name"], check)
        elif p["kind"] == "kms_alias":
            deleted = delete_kms_alias(module.client("kms"), p["name"], p["pending_days"], check)
        else:
            deleted = delete_vpc_endpoints(module.client("ec2"), p["name"], p["wait_timeout"], check)
    except Exception as e:  # botocore errors, with the API's message
        module.fail_json_aws(e, msg=f"deleting {p['kind']} {p['name']}")
    module.exit_json(changed=bool(deleted), deleted=deleted)


if __name__ == "__main__":
    main()
