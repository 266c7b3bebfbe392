"""cleanup_amis.yml against moto: old AMIs of the environment's channel are
deregistered and their snapshots deleted; the newest ones stay, and so does
every AMI a group runs, a provisioned version holds or a rollback may return
to, whichever environment's template it is in. Another channel's AMIs (a
stable copy in the same account) are never touched."""

import pytest

from stack_helpers import client, play

REGION = "eu-central-1"


def make_ami(ec2, name, channel):
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=name, TagSpecifications=[{"ResourceType": "image", "Tags": [
        {"Key": "service", "Value": "cinemo"}, {"Key": "channel", "Value": channel}]}])["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    return image


@pytest.fixture(scope="module")
def amis(moto):
    ec2, asg = client(moto, "ec2", REGION), client(moto, "autoscaling", REGION)
    edge = [make_ami(ec2, f"cinemo-edge-0.{i:02d}.0-x86_64", "edge") for i in range(10)]
    stable = make_ami(ec2, "cinemo-stable-0.00.0-x86_64", "stable")
    subnet = ec2.create_subnet(VpcId=ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"],
                               CidrBlock="10.20.30.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    # edge-internal: v1 (provisioned, the default) holds AMI 0; rollouts made v2..v6 with AMIs 1..5;
    # the group was rolled back to v2 (AMI 1).
    ec2.create_launch_template(LaunchTemplateName="cinemo-edge-internal",
                               LaunchTemplateData={"ImageId": edge[0], "InstanceType": "t3.small"})
    for i in range(1, 6):
        ec2.create_launch_template_version(LaunchTemplateName="cinemo-edge-internal",
                                           LaunchTemplateData={"ImageId": edge[i], "InstanceType": "t3.small"})
    asg.create_auto_scaling_group(AutoScalingGroupName="cinemo-edge-internal", MinSize=0, MaxSize=1,
                                  LaunchTemplate={"LaunchTemplateName": "cinemo-edge-internal", "Version": "2"},
                                  VPCZoneIdentifier=subnet)
    # another environment in this account and region runs stable's copy
    ec2.create_launch_template(LaunchTemplateName="cinemo-stable-public",
                               LaunchTemplateData={"ImageId": stable, "InstanceType": "t3.small"})
    return {"edge": edge, "stable": stable}


def test_check_mode_lists_and_deletes_nothing(moto, amis, tmp_path):
    done = play(moto, "edge", "ami_cleanup.yml", {"ami_cleanup_keep": 2}, tmp_path, "--check")
    assert amis["edge"][6] in done.stdout
    assert len(client(moto, "ec2", REGION).describe_images(Owners=["self"])["Images"]) == 11


def test_old_amis_go_with_their_snapshots_and_what_is_needed_stays(moto, amis, tmp_path):
    ec2 = client(moto, "ec2", REGION)
    snapshots = {i["ImageId"]: [b["Ebs"]["SnapshotId"] for b in i["BlockDeviceMappings"] if b.get("Ebs", {}).get("SnapshotId")]
                 for i in ec2.describe_images(Owners=["self"])["Images"]}
    moto.clear()
    play(moto, "edge", "ami_cleanup.yml", {"ami_cleanup_keep": 2, "ami_cleanup_keep_versions": 3}, tmp_path)
    edge = amis["edge"]
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    expected = {
        edge[9], edge[8],            # the 2 newest
        edge[0],                     # the provisioned version (v1, default)
        edge[1],                     # what the group runs (v2, rolled back)
        edge[5], edge[4], edge[3],   # the 3 newest versions (v6, v5, v4): a rollback's targets
        amis["stable"],              # another channel
    }
    assert left == expected
    gone = set(edge) - expected
    assert {p["ImageId"] for p in moto.find("DeregisterImage")} == gone
    deleted = {p["SnapshotId"] for p in moto.find("DeleteSnapshot")}
    assert deleted == {s for i in gone for s in snapshots[i]} and deleted
