"""cinemo_launch_template_ami: one new version per AMI, built from the
provisioned configuration (the template's default version), never touching
the group or the default version."""

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
        spec, group = template_module.group_template(asg, "cinemo-stable-public")
    assert spec["Version"] == "4" and group["AutoScalingGroupName"] == "cinemo-stable-public"


def test_new_version_from_the_provisioned_version_not_the_groups(template_module):
    # The group runs 4 (an older configuration, t3.micro); provision.yml has since made 5
    # (t3.small) the default. The new version takes 5's configuration with the new AMI.
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_launch_template_versions", version(4, "ami-old", "t3.micro"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["4"]})
    stub.add_response("describe_launch_template_versions", version(5, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Default"]})
    stub.add_response("describe_launch_template_versions", version(5, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Latest"]})
    stub.add_response("create_launch_template_version",
                      {"LaunchTemplateVersion": {"VersionNumber": 6, "LaunchTemplateId": LT_ID}},
                      {"LaunchTemplateId": LT_ID, "SourceVersion": "5", "VersionDescription": "release",
                       "LaunchTemplateData": {"ImageId": "ami-new", "InstanceType": "t3.small"}})
    with stub:
        name, tid, current, image, target, base, data = template_module.plan_version(
            ec2, {"LaunchTemplateId": LT_ID, "Version": "4"}, "ami-new")
        assert (current, image, target, base) == ("4", "ami-old", None, "5")
        assert template_module.create_version(ec2, tid, base, data, "ami-new", "release") == "6"
    stub.assert_no_pending_responses()


def test_retry_reuses_the_latest_version_with_that_ami(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_launch_template_versions", version(4, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["4"]})
    stub.add_response("describe_launch_template_versions", version(3, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Default"]})
    stub.add_response("describe_launch_template_versions", version(5, "ami-new"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Latest"]})
    with stub:
        *_, target, base, _ = template_module.plan_version(ec2, {"LaunchTemplateId": LT_ID, "Version": "4"}, "ami-new")
    assert (target, base) == ("5", "3")


def test_the_running_version_is_kept_when_it_is_the_provisioned_one_with_the_ami(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_launch_template_versions", version(4, "ami-new"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["4"]})
    stub.add_response("describe_launch_template_versions", version(3, "ami-old"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Default"]})
    stub.add_response("describe_launch_template_versions", version(4, "ami-new"),
                      {"LaunchTemplateId": LT_ID, "Versions": ["$Latest"]})
    with stub:
        *_, target, _, _ = template_module.plan_version(ec2, {"LaunchTemplateId": LT_ID, "Version": "4"}, "ami-new")
    assert target == "4"


def test_instances_launched_from_another_version_are_stale(template_module):
    # provision.yml moved the group to version 5; the instance running then came from 4
    group = {"Instances": [
        {"InstanceId": "i-old", "LaunchTemplate": {"LaunchTemplateId": LT_ID, "Version": "4"}},
        {"InstanceId": "i-new", "LaunchTemplate": {"LaunchTemplateId": LT_ID, "Version": "5"}},
        {"InstanceId": "i-lc", "LaunchConfigurationName": "old"}]}
    assert template_module.stale_instances(group, "5") == ["i-old", "i-lc"]
    assert template_module.stale_instances({"Instances": []}, "5") == []


def test_wrong_architecture_is_refused(template_module):
    ec2, stub = stubbed("ec2")
    stub.add_response("describe_instance_types", {"InstanceTypes": [{
        "InstanceType": "t3.small", "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}]},
        {"InstanceTypes": ["t3.small"]})
    with stub, pytest.raises(template_module.TemplateError, match="arm64 but t3.small"):
        template_module.check_architecture(ec2, {"InstanceType": "t3.small"},
                                           {"ImageId": "ami-arm", "Architecture": "arm64"})
