"""Which launch template version a rollout builds from, against moto: the
provisioned configuration (the template's default version, set only by
provision.yml) with the new AMI. A configuration change made by provision.yml
(here a new instance type) applies to the next instance the group launches and
to every later rollout; a rollout never carries an older configuration on."""

import json

import pytest
import yaml

from stack_helpers import ANSIBLE, client, play, recap

ENV = "dev"
REGION = "eu-west-1"
GROUP = "cinemo-dev-internal"


def inventory_tiers():
    return yaml.safe_load((ANSIBLE / "inventories" / ENV / "group_vars" / "all" / "tiers.yml").read_text())["tiers"]


def make_ami(ec2, name):
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=name, TagSpecifications=[{"ResourceType": "image", "Tags": [
        {"Key": "version", "Value": name}, {"Key": "git_sha", "Value": "abc"}, {"Key": "channel", "Value": "edge"}]}])["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    return image


@pytest.fixture(scope="module")
def world(moto):
    ec2, elb, iam, cw = (client(moto, s, REGION) for s in ("ec2", "elbv2", "iam", "cloudwatch"))
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.3{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    sg = ec2.create_security_group(GroupName="cinemo-dev-internal-tier", Description="t", VpcId=vpc)["GroupId"]
    tg = elb.create_target_group(Name=GROUP, Protocol="TCP", Port=8081, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    iam.create_instance_profile(InstanceProfileName=GROUP)
    for name in ("deploy-5xx", "deploy-unhealthy", "deploy-customer-failures", "deploy-in-progress"):
        cw.put_metric_alarm(AlarmName=f"cinemo-dev-{name}", Namespace="AWS/ApplicationELB", MetricName="RequestCount",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold")
    amis = {n: make_ami(ec2, f"cinemo-dev-{n}") for n in ("a", "b", "c")}
    facts = {"aws_account_id": "123456789012", "network_subnet_ids": {"internal_tier": subnets},
             "security_groups_ids": {"internal_tier": sg}, "load_balancers_target_group_arns": {"internal": tg}}
    return {"amis": amis, "facts": facts}


def provision(moto, world, tmp_path, instance_type="t3.micro", ami=None):
    tiers = inventory_tiers()
    tiers["internal"]["instance_type"] = instance_type
    extra = {**world["facts"], "tiers": tiers, "cinemo_ami_id": ami or ""}
    return play(moto, ENV, "app_tier.yml", extra, tmp_path)


def rollout(moto, tmp_path, ami):
    return play(moto, ENV, "../../../../ansible/rollout.yml", {"ami": ami, "rollout_tiers": ["internal"],
                                                             "rollout_skip_instance_refresh": True}, tmp_path)


def versions(moto):
    out = client(moto, "ec2", REGION).describe_launch_template_versions(LaunchTemplateName=GROUP)["LaunchTemplateVersions"]
    return {v["VersionNumber"]: v for v in out}


def default_version(moto):
    return versions(moto) and next(n for n, v in versions(moto).items() if v["DefaultVersion"])


def group(moto):
    return client(moto, "autoscaling", REGION).describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def finish_refresh(moto, version):
    """Where a successful instance refresh leaves the group (moto has none)."""
    client(moto, "autoscaling", REGION).update_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateName": GROUP, "Version": str(version)})


def data(moto, number):
    return versions(moto)[number]["LaunchTemplateData"]


def test_first_provision_makes_the_provisioned_default_version(moto, world, tmp_path):
    provision(moto, world, tmp_path, ami=world["amis"]["a"])
    assert list(versions(moto)) == [1] and default_version(moto) == 1
    assert data(moto, 1)["InstanceType"] == "t3.micro" and data(moto, 1)["ImageId"] == world["amis"]["a"]
    assert group(moto)["LaunchTemplate"]["Version"] == "1"
    again = provision(moto, world, tmp_path)
    assert recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    assert list(versions(moto)) == [1]


def test_a_rollout_changes_only_the_ami_and_never_the_default(moto, world, tmp_path):
    rollout(moto, tmp_path, world["amis"]["b"])
    assert list(versions(moto)) == [1, 2] and default_version(moto) == 1
    assert data(moto, 2) == {**data(moto, 1), "ImageId": world["amis"]["b"]}
    finish_refresh(moto, 2)
    again = provision(moto, world, tmp_path)
    assert recap(again.stdout)["changed"] == 0, "provision undid or re-made the rollout"
    assert group(moto)["LaunchTemplate"]["Version"] == "2"


def test_a_new_instance_type_from_provision_reaches_new_instances_and_the_next_rollout(moto, world, tmp_path):
    done = provision(moto, world, tmp_path, instance_type="t3.small")
    # a new provisioned version: the new type, the AMI the group runs
    assert list(versions(moto)) == [1, 2, 3] and default_version(moto) == 3
    assert data(moto, 3)["InstanceType"] == "t3.small" and data(moto, 3)["ImageId"] == world["amis"]["b"]
    # the group launches from it now (the runbook's "change the instance type, re-run provision")
    assert group(moto)["LaunchTemplate"]["Version"] == "3"
    assert "keep the old configuration until they are replaced" in done.stdout

    rollout(moto, tmp_path, world["amis"]["c"])
    assert list(versions(moto)) == [1, 2, 3, 4] and default_version(moto) == 3
    assert data(moto, 4) == {**data(moto, 3), "ImageId": world["amis"]["c"]}
    assert data(moto, 4)["InstanceType"] == "t3.small"
