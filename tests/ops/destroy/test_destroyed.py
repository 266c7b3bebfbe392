"""After `destroy.yml`, nothing of the environment is left but what it keeps
on purpose: the database's final snapshot and its KMS keys, scheduled for
deletion. Checked two ways: every resource the tagging API still knows with
the environment's tags, and each kind of resource provision.yml and
monitoring.yml make, looked up by its name."""

import botocore.exceptions
import pytest


def test_nothing_tagged_with_the_environment_is_left_but_the_final_snapshot_and_keys(env, aws):
    tagging = aws("resourcegroupstaggingapi")
    left = []
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=[
            {"Key": "Application", "Values": ["cinemo"]}, {"Key": "Environment", "Values": [env]}]):
        left += [r["ResourceARN"] for r in page["ResourceTagMappingList"]]
    kms, ec2 = aws("kms"), aws("ec2")
    unexpected = []
    for arn in left:
        if f":snapshot:cinemo-{env}-final-" in arn:
            continue
        if ":instance/" in arn:  # terminated instances stay listed for a while, on AWS too
            found = ec2.describe_instances(InstanceIds=[arn.rsplit("/", 1)[1]])["Reservations"]
            if all(i["State"]["Name"] == "terminated" for r in found for i in r["Instances"]):
                continue
        if ":kms:" in arn and kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion":
            continue
        unexpected.append(arn)
    assert unexpected == [], f"left after destroy.yml: {unexpected}"


def test_the_database_is_gone_and_its_final_snapshot_kept(env, aws):
    rds = aws("rds")
    with pytest.raises(botocore.exceptions.ClientError, match="DBInstanceNotFound"):
        rds.describe_db_instances(DBInstanceIdentifier=f"cinemo-{env}")
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier=f"cinemo-{env}")["DBSnapshots"]
    assert [s for s in snaps if s["DBSnapshotIdentifier"].startswith(f"cinemo-{env}-final-")], "no final snapshot"
    assert not [g for g in rds.describe_db_subnet_groups()["DBSubnetGroups"] if g["DBSubnetGroupName"] == f"cinemo-{env}"]


def test_no_network_is_left(env, aws):
    ec2 = aws("ec2")
    cidr = aws.vars["vpc_cidr"]
    assert not ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [cidr]}])["Vpcs"]
    assert not [s for s in ec2.describe_security_groups()["SecurityGroups"] if s["GroupName"].startswith(f"cinemo-{env}-")]
    running = ec2.describe_instances(Filters=[{"Name": "tag:Environment", "Values": [env]},
                                              {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}])
    assert not [i for r in running["Reservations"] for i in r["Instances"]]
    assert not ec2.describe_launch_templates(Filters=[{"Name": "tag:Environment", "Values": [env]}])["LaunchTemplates"]
    for name in (f"cinemo-{env}-public", f"cinemo-{env}-internal"):
        with pytest.raises(botocore.exceptions.ClientError):
            ec2.describe_launch_templates(LaunchTemplateNames=[name])
    nat = ec2.describe_nat_gateways(Filter=[{"Name": "state", "Values": ["pending", "available"]}])["NatGateways"]
    assert not [n for n in nat if n.get("VpcId") and not ec2.describe_vpcs(
        Filters=[{"Name": "vpc-id", "Values": [n["VpcId"]]}])["Vpcs"]], "a NAT gateway outlived its VPC"


def test_no_load_balancer_group_or_dns_is_left(env, aws):
    elb = aws("elbv2")
    names = {lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancers"]}
    assert not {f"cinemo-{env}-public", f"cinemo-{env}-internal"} & names
    tgs = {t["TargetGroupName"] for t in elb.describe_target_groups()["TargetGroups"]}
    assert not {f"cinemo-{env}-public", f"cinemo-{env}-internal"} & tgs
    groups = aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert not [g for g in groups if g["AutoScalingGroupName"].startswith(f"cinemo-{env}-")]
    zones = aws("route53").list_hosted_zones()["HostedZones"]
    assert not [z for z in zones if z["Name"] == f"{env}.cinemo.internal."]


def test_no_stream_parameter_log_alarm_topic_role_or_bucket_is_left(env, aws):
    streams = aws("kinesis").list_streams()["StreamNames"]
    assert not [s for s in streams if s.startswith(f"cinemo-{env}-")]
    assert aws("ssm").get_parameters_by_path(Path=f"/cinemo/{env}", Recursive=True)["Parameters"] == []
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/cinemo/{env}/")["logGroups"]
    assert groups == []
    cw = aws("cloudwatch")
    alarms = cw.describe_alarms(AlarmNamePrefix=f"cinemo-{env}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert alarms["MetricAlarms"] == [] and alarms["CompositeAlarms"] == []
    assert cw.list_dashboards(DashboardNamePrefix=f"cinemo-{env}")["DashboardEntries"] == []
    topics = [t["TopicArn"] for t in aws("sns").list_topics()["Topics"]]
    assert not [t for t in topics if t.endswith(f":cinemo-{env}-duty-manager")]
    roles = [r["RoleName"] for r in aws("iam").list_roles()["Roles"]]
    assert not [r for r in roles if r.startswith(f"cinemo-{env}-")]
    profiles = [p["InstanceProfileName"] for p in aws("iam").list_instance_profiles()["InstanceProfiles"]]
    assert not [p for p in profiles if p.startswith(f"cinemo-{env}-")]
    buckets = [b["Name"] for b in aws("s3").list_buckets()["Buckets"]]
    assert not [b for b in buckets if b.startswith(f"cinemo-{env}-")]


def test_the_keys_are_scheduled_for_deletion_and_their_aliases_free(env, aws):
    kms = aws("kms")
    mine = []
    for key in kms.list_keys()["Keys"]:
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])}
        if tags.get("Environment") == env and tags.get("Application") == "cinemo":
            mine.append(kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"])
    assert mine, "the environment's SSM key is not there at all"
    assert {k["KeyState"] for k in mine} == {"PendingDeletion"}
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert f"alias/cinemo-{env}-ssm" not in aliases, "a new provision.yml could not make its key"
