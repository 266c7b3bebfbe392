#!/usr/bin/python
# -*- coding: utf-8 -*-
# A new launch template version for an autoscaling group: the provisioned
# configuration (the template's default version, which only provision.yml
# sets: app_tier's cinemo_launch_template) with another AMI. The group itself
# is not touched: the instance refresh moves it to the new version, and rolls
# it back to the old one.

DOCUMENTATION = r"""
---
module: cinemo_launch_template_ami
short_description: New launch template version with another AMI, based on the provisioned version
description:
  - Builds the version from the template's C($Default) version, the configuration
    provision.yml owns (instance type, security group, user data, ...), with only C(ImageId)
    changed (C(SourceVersion) and the base's whole data). So a configuration change made by
    provision.yml reaches every rollout, and a rollout never carries an older one forward.
  - Idempotent. When the version the group runs already is that configuration with the AMI,
    nothing is created; when the newest version is (an earlier rollout that was rolled back or
    is being retried), that version is reused.
  - C(refresh_needed) is true when the group is not on the target version, or when one of its
    instances runs another version (provision.yml moved the group to a new configuration but
    the instances running then were not replaced).
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
base_version: {description: the provisioned version the new one is built from, returned: always, type: str}
stale_instances: {description: instances of the group that run another version than the target, returned: always, type: list}
current_image_id: {returned: always, type: str}
version: {description: the version to refresh to, returned: always, type: str}
"""


class TemplateError(Exception):
    pass


def group_template(asg_client, asg_name):
    """Returns (launch template spec, group description)."""
    groups = asg_client.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    if not groups:
        raise TemplateError(f"Auto Scaling group {asg_name} not found: run provision.yml for this environment first")
    spec = groups[0].get("LaunchTemplate")
    if not spec:
        raise TemplateError(f"{asg_name} does not use a launch template (mixed instances policies are not supported)")
    return spec, groups[0]


def plan_version(ec2_client, spec, image_id):
    """Returns (template_name, template_id, current_version, current_image, target_version or None,
    base_version, base_data): the target is None when a version must be created from the base."""
    selector = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {
        "LaunchTemplateName": spec["LaunchTemplateName"]}

    def read(version):
        return ec2_client.describe_launch_template_versions(Versions=[version], **selector)["LaunchTemplateVersions"][0]

    current = read(spec.get("Version") or "$Default")
    base = read("$Default")
    latest = read("$Latest")
    name, tid = current["LaunchTemplateName"], current["LaunchTemplateId"]
    current_data = current.get("LaunchTemplateData", {})
    wanted = {**base.get("LaunchTemplateData", {}), "ImageId": image_id}
    target = None
    if current_data == wanted:
        target = current["VersionNumber"]
    elif latest.get("LaunchTemplateData", {}) == wanted:
        target = latest["VersionNumber"]
    return (name, tid, str(current["VersionNumber"]), current_data.get("ImageId", ""),
            (str(target) if target else None), str(base["VersionNumber"]), base.get("LaunchTemplateData", {}))


def stale_instances(group, version):
    """Instances of the group launched from another version (or another template) than `version`."""
    out = []
    for i in group.get("Instances", []):
        lt = i.get("LaunchTemplate") or {}
        if str(lt.get("Version", "")) != str(version):
            out.append(i["InstanceId"])
    return out


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


def create_version(ec2_client, template_id, base_version, base_data, image_id, description):
    """The base's whole data is sent, not only the AMI: AWS would copy it from SourceVersion
    anyway, and an emulator that ignores SourceVersion (moto) then builds the same version."""
    created = ec2_client.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion=str(base_version),
        VersionDescription=(description or f"cinemo rollout of {image_id}")[:255],
        LaunchTemplateData={**base_data, "ImageId": image_id},
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
        spec, group = group_template(asg, p["asg_name"])
        name, tid, current, current_image, target, base, data = plan_version(ec2, spec, p["image_id"])
        check_architecture(ec2, data, images[0])
        changed = target is None
        if changed:
            target = "(new)" if module.check_mode else create_version(
                ec2, tid, base, data, p["image_id"], p["description"])
        stale = stale_instances(group, target)
    except TemplateError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # botocore errors
        module.fail_json_aws(e, msg=f"launch template version for {p['asg_name']}")
    module.exit_json(changed=changed, launch_template_name=name, launch_template_id=tid,
                     current_version=current, current_image_id=current_image, version=target,
                     base_version=base, stale_instances=stale,
                     refresh_needed=(target != current or bool(stale)))


if __name__ == "__main__":
    main()
