#!/usr/bin/python
# -*- coding: utf-8 -*-
# The launch template configuration that provision.yml owns. A template's
# versions are made by two playbooks: provision.yml (instance type, security
# group, user data, IAM profile, disks, metadata options) and rollout.yml (the
# AMI). The **default version** is the provisioned configuration: only this
# module sets it, and rollout.yml builds every version from it with only the
# AMI changed (cinemo_launch_template_ami). So a configuration change reaches
# the next rollout, and a rollout never undoes one.

DOCUMENTATION = r"""
---
module: cinemo_launch_template
short_description: The provisioned configuration of a launch template, as its default version
description:
  - O(data) is the C(LaunchTemplateData) of the API without C(ImageId).
  - Without a template, creates it (version 1, the default) with O(image_id).
  - Otherwise compares O(data) with the default version's data, ignoring C(ImageId). When they
    differ, creates a new version with O(data) and the AMI the group runs (the image of
    O(pinned_version), else of the default version), and makes it the default.
  - Only the keys O(data) manages are compared; a key missing from O(data) but present in the
    default version counts as a difference.
options:
  name: {type: str, required: true, description: Launch template name.}
  data: {type: dict, required: true, description: LaunchTemplateData without ImageId.}
  image_id: {type: str, description: AMI of a template created now.}
  pinned_version: {type: str, description: The version the Auto Scaling group runs, if it exists.}
  description: {type: str, description: Description of a version created now.}
  tags: {type: dict, description: Tags of the template itself (set when it is created).}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
launch_template_id: {returned: always, type: str}
provisioned_version: {description: the default version after the run, returned: always, type: str}
image_id: {description: the AMI of the provisioned version, returned: always, type: str}
config_changed: {description: a new provisioned version was made (or the template created), returned: always, type: bool}
"""

# Every key of LaunchTemplateData that provision.yml may set. ImageId is the
# rollout's; a key listed here and absent from `data` must be absent.
MANAGED = ("InstanceType", "IamInstanceProfile", "KeyName", "NetworkInterfaces", "MetadataOptions",
           "BlockDeviceMappings", "UserData", "TagSpecifications")


class TemplateError(Exception):
    pass


def _norm(value):
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _covers(existing, wanted):
    """True when every key of `wanted` has the same value in `existing` (AWS may add keys)."""
    if isinstance(wanted, dict):
        return isinstance(existing, dict) and all(_covers(existing.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(existing, list) and len(existing) == len(wanted)
                and all(_covers(e, w) for e, w in zip(existing, wanted)))
    return existing == wanted


def config_differs(existing_data, wanted):
    """The managed keys of `wanted` against a version's data, AMI aside."""
    for key in MANAGED:
        if key not in wanted:
            if existing_data.get(key) not in (None, [], {}, ""):
                return True
        elif not _covers(_norm(existing_data.get(key)), _norm(wanted[key])):
            return True
    return False


def find_template(client, name):
    try:
        found = client.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
    except Exception as e:  # InvalidLaunchTemplateName.NotFoundException
        if "NotFound" in str(e):
            return None
        raise
    return found[0] if found else None


def version_data(client, template_id, version):
    answer = client.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[str(version)])
    return answer["LaunchTemplateVersions"][0]


def ensure(client, name, data, image_id=None, pinned_version=None, description=None, tags=None,
           check_mode=False):
    """Returns the RETURN dict (without `changed`, which is config_changed)."""
    data = {k: v for k, v in data.items() if k != "ImageId"}
    template = find_template(client, name)
    if template is None:
        if not image_id:
            raise TemplateError(f"launch template {name} does not exist yet: give the AMI of its first version "
                                "(provision.yml: -e cinemo_ami_id=ami-..., the Packer manifest's AMI)")
        if check_mode:
            return dict(launch_template_id="", provisioned_version="1", image_id=image_id, config_changed=True)
        params = dict(LaunchTemplateName=name, VersionDescription=(description or "")[:255],
                      LaunchTemplateData={**data, "ImageId": image_id})
        if tags:
            params["TagSpecifications"] = [{"ResourceType": "launch-template",
                                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        created = client.create_launch_template(**params)["LaunchTemplate"]
        return dict(launch_template_id=created["LaunchTemplateId"], provisioned_version="1",
                    image_id=image_id, config_changed=True)

    tid = template["LaunchTemplateId"]
    default = version_data(client, tid, "$Default")
    default_data = default.get("LaunchTemplateData", {})
    if not config_differs(default_data, data):
        return dict(launch_template_id=tid, provisioned_version=str(default["VersionNumber"]),
                    image_id=default_data.get("ImageId", ""), config_changed=False)

    runs = version_data(client, tid, pinned_version) if pinned_version else default
    image = runs.get("LaunchTemplateData", {}).get("ImageId") or default_data.get("ImageId") or image_id
    if check_mode:
        return dict(launch_template_id=tid, provisioned_version="(new)", image_id=image, config_changed=True)
    made = client.create_launch_template_version(
        LaunchTemplateId=tid, VersionDescription=(description or "")[:255],
        LaunchTemplateData={**data, "ImageId": image})["LaunchTemplateVersion"]
    number = str(made["VersionNumber"])
    client.modify_launch_template(LaunchTemplateId=tid, DefaultVersion=number)
    return dict(launch_template_id=tid, provisioned_version=number, image_id=image, config_changed=True)


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            data=dict(type="dict", required=True),
            image_id=dict(type="str"),
            pinned_version=dict(type="str"),
            description=dict(type="str"),
            tags=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = ensure(module.client("ec2"), p["name"], p["data"], p["image_id"], p["pinned_version"],
                        p["description"], p["tags"], module.check_mode)
    except TemplateError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # botocore errors, with the API's message
        module.fail_json_aws(e, msg=f"launch template {p['name']}")
    module.exit_json(changed=result["config_changed"], **result)


if __name__ == "__main__":
    main()
