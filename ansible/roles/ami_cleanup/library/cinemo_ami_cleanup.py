#!/usr/bin/python
# -*- coding: utf-8 -*-
# Deregister old cinemo AMIs and delete their snapshots (storage is billed
# per snapshot GB-month), keeping what a rollback or a running group needs.

DOCUMENTATION = r"""
---
module: cinemo_ami_cleanup
short_description: Deregister old AMIs of a channel and delete their snapshots
description:
  - Candidates are this account's AMIs tagged C(service=cinemo) and C(channel=O(channel)).
  - Kept are the O(keep) newest of them, and every AMI that any launch template named
    O(template_prefix)* in this region uses in its O(keep_versions) newest versions, its
    default version, or the version an Auto Scaling group runs (so any environment sharing
    this account and region, and the previous versions a rollback returns to, keep theirs).
  - Everything else is deregistered and its EBS snapshots deleted. Check mode lists them.
options:
  channel: {type: str, required: true, description: The channel tag of the AMIs to clean (edge or stable).}
  keep: {type: int, default: 5, description: How many of the newest AMIs to keep whatever uses them.}
  keep_versions: {type: int, default: 3, description: How many of each launch template's newest versions keep their AMIs.}
  template_prefix: {type: str, default: cinemo-, description: Launch templates whose AMIs are in use.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
kept: {description: AMIs kept, with why, returned: always, type: dict}
deleted: {description: AMIs deregistered (or that would be, in check mode), returned: always, type: list}
snapshots: {description: snapshots deleted, returned: always, type: list}
"""


def candidates(ec2, channel):
    images = []
    for page in ec2.get_paginator("describe_images").paginate(Owners=["self"], Filters=[
            {"Name": "tag:service", "Values": ["cinemo"]}, {"Name": "tag:channel", "Values": [channel]}]):
        images += page["Images"]
    # newest first; AMI names carry the build time, which breaks ties of a second
    return sorted(images, key=lambda i: (i.get("CreationDate", ""), i.get("Name", "")), reverse=True)


def images_in_use(ec2, asg, template_prefix, keep_versions):
    """AMI id -> why it is in use."""
    used = {}
    pinned = {}
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
        for g in page["AutoScalingGroups"]:
            lt = g.get("LaunchTemplate")
            if lt and lt.get("LaunchTemplateName", "").startswith(template_prefix):
                pinned.setdefault(lt["LaunchTemplateName"], set()).add(str(lt.get("Version")))
    templates = []
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        templates += [t for t in page["LaunchTemplates"] if t["LaunchTemplateName"].startswith(template_prefix)]
    for t in templates:
        name = t["LaunchTemplateName"]
        versions = []
        for page in ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateId=t["LaunchTemplateId"]):
            versions += page["LaunchTemplateVersions"]
        versions.sort(key=lambda v: v["VersionNumber"], reverse=True)
        for i, v in enumerate(versions):
            image = v.get("LaunchTemplateData", {}).get("ImageId")
            if not image:
                continue
            number = str(v["VersionNumber"])
            if number in pinned.get(name, set()):
                used.setdefault(image, f"{name} v{number} runs it")
            elif v.get("DefaultVersion"):
                used.setdefault(image, f"{name} v{number} is the provisioned version")
            elif i < keep_versions:
                used.setdefault(image, f"{name} v{number} is among the {keep_versions} newest (rollback)")
    return used


def plan(images, used, keep):
    kept, delete = {}, []
    for i, image in enumerate(images):
        iid = image["ImageId"]
        if i < keep:
            kept[iid] = f"among the {keep} newest"
        elif iid in used:
            kept[iid] = used[iid]
        else:
            delete.append(image)
    return kept, delete


def run(ec2, asg, channel, keep=5, keep_versions=3, template_prefix="cinemo-", check_mode=False):
    images = candidates(ec2, channel)
    kept, delete = plan(images, images_in_use(ec2, asg, template_prefix, keep_versions), keep)
    snapshots = []
    for image in delete:
        snaps = [b["Ebs"]["SnapshotId"] for b in image.get("BlockDeviceMappings", []) if b.get("Ebs", {}).get("SnapshotId")]
        if not check_mode:
            ec2.deregister_image(ImageId=image["ImageId"])
            for s in snaps:
                ec2.delete_snapshot(SnapshotId=s)
        snapshots += snaps
    return {"kept": kept, "deleted": [i["ImageId"] for i in delete], "snapshots": snapshots}


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(channel=dict(type="str", required=True), keep=dict(type="int", default=5),
                           keep_versions=dict(type="int", default=3),
                           template_prefix=dict(type="str", default="cinemo-")),
        supports_check_mode=True,
    )
    p = module.params
    if p["keep"] < 1:
        module.fail_json(msg="keep must be at least 1")
    try:
        result = run(module.client("ec2"), module.client("autoscaling"), p["channel"], p["keep"],
                     p["keep_versions"], p["template_prefix"], module.check_mode)
    except Exception as e:  # botocore errors
        module.fail_json_aws(e, msg=f"cleaning {p['channel']} AMIs")
    module.exit_json(changed=bool(result["deleted"]), **result)


if __name__ == "__main__":
    main()
