"""cinemo_launch_template_ami: one new version per AMI, based on what the
group runs, never touching the group or the default version."""

import pytest

from conftest import stubbed

LT_ID = "lt-0123456789abcdef0"


def version(number, image, instance_type="t3.small"):
    return {"LaunchTemplateVersions": [{
        "LaunchTemplateId": LT_ID, "LaunchTemplateName": "cinemo-stable-public", "VersionNumber": number,
        "LaunchTemplateData": {"ImageId": image, "InstanceType": instance_type}}]}


def test_group_template_reads_the_pinned_version(template_module):
    asg, stub = stubbed("autoscaling")
    stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [{
        "AutoScalingGroupName": "cinemo-stable-public", "MinSize": 2, "MaxSize": 6, "DesiredCapacity": 2,
        "DefaultCooldown": 300, "AvailabilityZones": ["eu-central-1a"], "HealthCheckType": "ELB",
        "CreatedTime": "2026-01-01T00:00:00Z",
        "LaunchTemplate": {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "cinemo-stable-public", "Version": "4"}}]},
        {"AutoScalingGroupNames": ["cinemo-stable-public"]})
    with stub:
        spec = template_module.group_template(asg, "cinemo-stable-public")
    assert spec["Version"] == "4"


def test_new_version_from_the_groups_version(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_launch_template_versions", version(4, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["4"]})
    stub.add_response("describe_launch_template_versions", version(5, "ami-broken"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Latest"]})
    stub.add_response("create_launch_template_version",
                      {"LaunchTemplateVersion": {"VersionNumber": 6, "LaunchTemplateId": LT_ID}},
                      {"LaunchTemplateId": LT_ID, "SourceVersion": "4", "VersionDescription": "release",
                       "LaunchTemplateData": {"ImageId": "ami-new"}})
    with stub:
        name, tid, current, image, target, _ = template_module.plan_version(
            ec2, {"LaunchTemplateId": LT_ID, "Version": "4"}, "ami-new")
        assert (current, image, target) == ("4", "ami-old", None)
        assert template_module.create_version(ec2, tid, current, "ami-new", "release") == "6"
    stub.assert_no_pending_responses()


def test_retry_reuses_the_latest_version_with_that_ami(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_launch_template_versions", version(4, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["4"]})
    stub.add_response("describe_launch_template_versions", version(5, "ami-new"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Latest"]})
    with stub:
        *_, target, _ = template_module.plan_version(ec2, {"LaunchTemplateId": LT_ID, "Version": "4"}, "ami-new")
    assert target == "5"


def test_wrong_architecture_is_refused(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_instance_types", {"InstanceTypes": [{
        "InstanceType": "t3.small", "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}]},
        {"InstanceTypes": ["t3.small"]})
    with stub, pytest.raises(template_module.TemplateError, match="arm64 but t3.small"):
        template_module.check_architecture(ec2, {"InstanceType": "t3.small"},
                                           {"ImageId": "ami-arm", "Architecture": "arm64"})
