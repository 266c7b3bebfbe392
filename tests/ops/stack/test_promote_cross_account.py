"""Promotion from edge in its own account to stable in another, against moto's
accounts (credentials from sts:AssumeRole act in the role's account).

edge's provision.yml (ami_sharing role) makes a customer-managed key the
stable account may use, as AWS documents for sharing encrypted AMIs, and a
role stable's promote.yml assumes. promote.yml then reads edge with that role,
copies an AMI encrypted with the default EBS key (which cannot be shared)
with the shareable key, in edge's account, and grants stable launch
permission on it and create-volume permission on its snapshots.

moto copies AMIs only within one account, so the last step, stable's
CopyImage of the shared image, cannot run here (promote_share_only stops
before it); docs/architecture.md says what proves it instead."""

import json

import boto3
import pytest

from stack_helpers import client, play

REGION = "eu-central-1"
EDGE, STABLE = "111111111111", "123456789012"


def edge_session(moto):
    creds = client(moto, "sts", REGION).assume_role(
        RoleArn=f"arn:aws:iam::{EDGE}:role/edge-admin", RoleSessionName="edge-admin")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def edge_client(moto, env, service):
    return boto3.client(service, endpoint_url=moto.direct_url, region_name=REGION,
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=env["AWS_SESSION_TOKEN"])


@pytest.fixture(scope="module")
def accounts(moto, tmp_path_factory):
    edge = edge_session(moto)
    ec2 = edge_client(moto, edge, "ec2")
    assert edge_client(moto, edge, "sts").get_caller_identity()["Account"] == EDGE
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    tags = {"service": "cinemo", "version": "0.2.0", "git_sha": "bbbbbbbbbbbb", "channel": "edge", "smoke": "passed"}
    ami = ec2.create_image(InstanceId=instance, Name="cinemo-edge-0.2.0-x86_64", TagSpecifications=[{
        "ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["ImageId"]
    # what edge runs: both tiers on that AMI
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.30.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    for tier in ("public", "internal"):
        ec2.create_launch_template(LaunchTemplateName=f"cinemo-edge-{tier}",
                                   LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"})
        edge_client(moto, edge, "autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=f"cinemo-edge-{tier}", MinSize=0, MaxSize=1, DesiredCapacity=0,
            LaunchTemplate={"LaunchTemplateName": f"cinemo-edge-{tier}", "Version": "1"}, VPCZoneIdentifier=subnet)
    out = tmp_path_factory.mktemp("sharing")
    play(moto, "edge", "ami_sharing.yml", {"aws_account_id": EDGE, "ami_sharing_target_account_ids": [STABLE]},
         out, environ=edge)
    return {"edge": edge, "ami": ami, "tmp": out}


def promote(moto, accounts, *extra, check=True):
    return play(moto, "stable", "../../../../ansible/promote.yml",
                {"ami": accounts["ami"], "promote_source_account_id": EDGE, "promote_share_only": True},
                accounts["tmp"], *extra, check=check)


def test_edge_lets_the_stable_account_use_its_ami_key_as_aws_documents(moto, accounts):
    kms = edge_client(moto, accounts["edge"], "kms")
    key = kms.describe_key(KeyId="alias/cinemo-edge-ami")["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    use, grant = by_sid["PromotionAccountsUseTheKey"], by_sid["PromotionAccountsGrantToEBS"]
    assert use["Principal"]["AWS"] == grant["Principal"]["AWS"] == [f"arn:aws:iam::{STABLE}:root"]
    assert {"kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*"} <= set(use["Action"])
    assert "kms:CreateGrant" in grant["Action"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    role = edge_client(moto, accounts["edge"], "iam").get_role(RoleName="cinemo-edge-promote-source")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"]["AWS"] in ([f"arn:aws:iam::{STABLE}:root"], f"arn:aws:iam::{STABLE}:root")


def test_promote_reads_edge_with_its_role_and_shares_a_shareable_copy(moto, accounts):
    moto.clear()
    done = promote(moto, accounts)
    assumed = moto.find("AssumeRole")
    assert [a["RoleArn"] for a in assumed] == [f"arn:aws:iam::{EDGE}:role/cinemo-edge-promote-source"]
    # the baked AMI's snapshots are not under the shareable key: copied with it, in edge's account
    copies = moto.find("CopyImage")
    key_arn = edge_client(moto, accounts["edge"], "kms").describe_key(KeyId="alias/cinemo-edge-ami")["KeyMetadata"]["Arn"]
    assert len(copies) == 1 and copies[0]["SourceImageId"] == accounts["ami"]
    assert copies[0]["Encrypted"] == "true" and copies[0]["KmsKeyId"] == key_arn
    ec2 = edge_client(moto, accounts["edge"], "ec2")
    shared = ec2.describe_images(Filters=[{"Name": "tag:shareable_copy_of", "Values": [accounts["ami"]]}])["Images"]
    assert len(shared) == 1
    image = shared[0]
    assert {"UserId": STABLE} in ec2.describe_image_attribute(
        ImageId=image["ImageId"], Attribute="launchPermission")["LaunchPermissions"]
    for bdm in image["BlockDeviceMappings"]:
        if bdm.get("Ebs", {}).get("SnapshotId"):
            perms = ec2.describe_snapshot_attribute(SnapshotId=bdm["Ebs"]["SnapshotId"],
                                                    Attribute="createVolumePermission")["CreateVolumePermissions"]
            assert {"UserId": STABLE} in perms
    # nothing was copied into stable's account nor rolled out there (promote_share_only)
    assert not client(moto, "ec2", REGION).describe_images(
        Filters=[{"Name": "tag:source_ami", "Values": [accounts["ami"]]}])["Images"]
    assert "cinemo-stable-public" not in done.stdout


def test_a_second_promote_reuses_the_shareable_copy(moto, accounts):
    moto.clear()
    promote(moto, accounts)
    assert moto.find("CopyImage") == [] and moto.find("ModifyImageAttribute") == []


def test_an_untested_ami_is_refused_before_anything_is_shared(moto, accounts):
    ec2 = edge_client(moto, accounts["edge"], "ec2")
    ec2.delete_tags(Resources=[accounts["ami"]], Tags=[{"Key": "smoke"}])
    moto.clear()
    done = promote(moto, accounts, check=False)
    assert done.returncode != 0 and "did not pass on edge" in done.stdout
    assert moto.find("ModifyImageAttribute") == [] and moto.find("CopyImage") == []
    ec2.create_tags(Resources=[accounts["ami"]], Tags=[{"Key": "smoke", "Value": "passed"}])
