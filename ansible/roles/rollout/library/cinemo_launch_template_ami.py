#!/usr/bin/python
# -*- coding: utf-8 -*-
# A new launch template version that differs from the one an autoscaling
# group runs only by its AMI. The group itself is not touched: the instance
# refresh moves it to the new version, and rolls it back to the old one.

DOCUMENTATION = r"""
---
module: cinemo_launch_template_ami
short_description: New launch template version with another AMI, based on the version an ASG runs
description:
  - Resolves the launch template version the Auto Scaling group O(asg_name) uses
    (C($Latest) and C($Default) are resolved to numbers), and creates a new version from it
    with C(SourceVersion) and only C(ImageId) changed.
  - Idempotent. When the group's version already has the AMI, nothing is created; when the
    newest version of the template already has the AMI (an earlier rollout that was rolled
    back or is being retried), that version is reused.
  - The default version and the group are left alone.
options:
  asg_name: {type: str, required: true, description: Auto Scaling group whose launch template is versioned.}
  image_id: {type: str, required: true, description: The AMI to roll out.}
  description: {type: str, description: Version description (for example the release version and git sha).}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
launch_template_name: {returned: always, type: str}
launch_template_id: {returned: always, type: str}
current_version: {description: the version the group runs now, returned: always, type: str}
current_image_id: {returned: always, type: str}
version: {description: the version to refresh to, returned: always, type: str}
"""


class TemplateError(Exception):
    pass


def group_template(asg_client, asg_name):
    groups = asg_client.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    if not groups:
        raise TemplateError(f"Auto Scaling group {asg_name} not found: run provision.yml for this environment first")
    spec = groups[0].get("LaunchTemplate")
    if not spec:
        raise TemplateError(f"{asg_name} does not use a launch template (mixed instances policies are not supported)")
    return spec


def plan_version(ec2_client, spec, image_id):
    """Returns (template_name, template_id, current_version, current_image, target_version or None)."""
    selector = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {
        "LaunchTemplateName": spec["LaunchTemplateName"]}
    wanted = spec.get("Version") or "$Default"
    current = ec2_client.describe_launch_template_versions(Versions=[wanted], **selector)["LaunchTemplateVersions"][0]
    latest = ec2_client.describe_launch_template_versions(Versions=["$Latest"], **selector)["LaunchTemplateVersions"][0]
    name, tid = current["LaunchTemplateName"], current["LaunchTemplateId"]
    current_image = current.get("LaunchTemplateData", {}).get("ImageId", "")
    target = None
    if current_image == image_id:
        target = current["VersionNumber"]
    elif latest.get("LaunchTemplateData", {}).get("ImageId") == image_id:
        target = latest["VersionNumber"]
    return (name, tid, str(current["VersionNumber"]), current_image, (str(target) if target else None),
            current.get("LaunchTemplateData", {}))


def check_architecture(ec2_client, template_data, image):
    """The AMI must run on the template's instance type (x86_64 vs arm64 builds)."""
    instance_type = template_data.get("InstanceType")
    arch = image.get("Architecture")
    if not instance_type or not arch:
        return
    types = ec2_client.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    supported = types[0].get("ProcessorInfo", {}).get("SupportedArchitectures", []) if types else []
    if supported and arch not in supported:
        raise TemplateError(
            f"AMI {image['ImageId']} is {arch} but {instance_type} runs {'/'.join(supported)}: "
            "pick the manifest build for this architecture (rollout_manifest_build)"
        )


def create_version(ec2_client, template_id, source_version, image_id, description):
    created = ec2_client.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion=str(source_version),
        VersionDescription=(description or f"cinemo rollout of {image_id}")[:255],
        LaunchTemplateData={"ImageId": image_id},
    )
    return str(created["LaunchTemplateVersion"]["VersionNumber"])


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            asg_name=dict(type="str", required=True),
            image_id=dict(type="str", required=True),
            description=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    asg, ec2 = module.client("autoscaling"), module.client("ec2")
    try:
        images = ec2.describe_images(ImageIds=[p["image_id"]])["Images"]
        if not images:
            raise TemplateError(f"AMI {p['image_id']} not found in this region")
        spec = group_template(asg, p["asg_name"])
        name, tid, current, current_image, target, data = plan_version(ec2, spec, p["image_id"])
        check_architecture(ec2, data, images[0])
        changed = target is None
        if changed:
            target = "(new)" if module.check_mode else create_version(
                ec2, tid, current, p["image_id"], p["description"])
    except TemplateError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # botocore errors
        module.fail_json_aws(e, msg=f"launch template version for {p['asg_name']}")
    module.exit_json(changed=changed, launch_template_name=name, launch_template_id=tid,
                     current_version=current, current_image_id=current_image, version=target,
                     refresh_needed=(target != current))


if __name__ == "__main__":
    main()
