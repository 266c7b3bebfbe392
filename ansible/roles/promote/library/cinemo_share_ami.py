#!/usr/bin/python
# -*- coding: utf-8 -*-
# Share an AMI with other accounts so they can copy it: launch permission on
# the image and create-volume permission on each of its snapshots (a copy
# reads the snapshots: docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html).
# The AMI's snapshots must be encrypted with a key those accounts may use
# (the ami_sharing role's key), which this module does not change.

DOCUMENTATION = r"""
---
module: cinemo_share_ami
short_description: Give accounts launch permission on an AMI and create-volume permission on its snapshots
options:
  image_id: {type: str, required: true, description: The AMI to share.}
  account_ids: {type: list, elements: str, required: true, description: Accounts to share it with.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
snapshot_ids: {description: the AMI's EBS snapshots, returned: always, type: list}
shared: {description: what was granted now, as image or snapshot id to the accounts added, returned: always, type: dict}
"""


class ShareError(Exception):
    pass


def snapshots_of(image):
    return [b["Ebs"]["SnapshotId"] for b in image.get("BlockDeviceMappings", [])
            if b.get("Ebs", {}).get("SnapshotId")]


def ensure_shared(client, image_id, account_ids, check_mode=False):
    """Returns (snapshot ids, {resource id: [accounts granted now]})."""
    images = client.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise ShareError(f"AMI {image_id} not found in this account and region")
    snapshots = snapshots_of(images[0])
    granted = {}
    have = {p.get("UserId") for p in client.describe_image_attribute(
        ImageId=image_id, Attribute="launchPermission").get("LaunchPermissions", [])}
    missing = [a for a in account_ids if a not in have]
    if missing:
        granted[image_id] = missing
        if not check_mode:
            client.modify_image_attribute(ImageId=image_id,
                                          LaunchPermission={"Add": [{"UserId": a} for a in missing]})
    for snap in snapshots:
        have = {p.get("UserId") for p in client.describe_snapshot_attribute(
            SnapshotId=snap, Attribute="createVolumePermission").get("CreateVolumePermissions", [])}
        missing = [a for a in account_ids if a not in have]
        if missing:
            granted[snap] = missing
            if not check_mode:
                client.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                                 OperationType="add", UserIds=missing)
    return snapshots, granted


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(image_id=dict(type="str", required=True),
                           account_ids=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    try:
        snapshots, granted = ensure_shared(module.client("ec2"), module.params["image_id"],
                                           module.params["account_ids"], module.check_mode)
    except ShareError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # botocore errors
        module.fail_json_aws(e, msg=f"sharing {module.params['image_id']}")
    module.exit_json(changed=bool(granted), snapshot_ids=snapshots, shared=granted)


if __name__ == "__main__":
    main()
