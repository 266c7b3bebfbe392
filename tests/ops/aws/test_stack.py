"""Read the provisioned stack back through the AWS API and check what must
hold: the security-group chain (and what it must not allow), subnets per
tier, load balancers, autoscaling, launch templates, IAM scope, streams."""

import base64
import json
import re
import urllib.parse

import pytest

TIER_PORTS = {"public": 8080, "internal": 8081}
DB_PORTS = {"postgres": [5432], "mongodb": [27017], "sqlite": []}


def vpc_id(stack):
    vpcs = stack.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": [stack.prefix]}, {"Name": "cidr", "Values": [stack.vars["vpc_cidr"]]}]
    )["Vpcs"]
    assert len(vpcs) == 1, f"expected one VPC {stack.prefix}"
    return vpcs[0]["VpcId"]


def security_groups(stack):
    sgs = stack.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]}])
    return {sg["GroupName"]: sg for sg in sgs["SecurityGroups"]}


def ingress(sg):
    """Set of (port, source) with source a CIDR or a group id."""
    out = set()
    for p in sg["IpPermissions"]:
        assert p["IpProtocol"] == "tcp", f"{sg['GroupName']}: non-TCP rule {p}"
        assert p["FromPort"] == p["ToPort"], f"{sg['GroupName']}: port range {p}"
        out |= {(p["FromPort"], r["CidrIp"]) for r in p.get("IpRanges", [])}
        out |= {(p["FromPort"], g["GroupId"]) for g in p.get("UserIdGroupPairs", [])}
        assert not p.get("Ipv6Ranges"), f"{sg['GroupName']}: IPv6 ingress {p}"
        assert not p.get("PrefixListIds"), f"{sg['GroupName']}: prefix-list ingress {p}"
    return out


def subnets_by_tier(stack):
    subnets = stack.client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]}])["Subnets"]
    out = {}
    for s in subnets:
        tier = {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("Tier")
        out.setdefault(tier, []).append(s)
    return out


# ---- network -----------------------------------------------------------------


def test_subnets_per_tier_span_at_least_two_azs(stack):
    by_tier = subnets_by_tier(stack)
    assert set(by_tier) == {"public", "public_tier", "internal_lb", "internal_tier", "data"}
    for tier, subnets in by_tier.items():
        assert sorted(s["CidrBlock"] for s in subnets) == sorted(stack.vars["subnet_cidrs"][tier])
        assert len({s["AvailabilityZone"] for s in subnets}) >= 2, tier
        assert not any(s["MapPublicIpOnLaunch"] for s in subnets), f"{tier} subnets hand out public IPs"


def test_private_subnets_route_out_through_nat_only(stack):
    ec2 = stack.client("ec2")
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]}])["RouteTables"]
    by_subnet = {a["SubnetId"]: t for t in tables for a in t["Associations"] if a.get("SubnetId")}
    for tier, subnets in subnets_by_tier(stack).items():
        for s in subnets:
            routes = [r for r in by_subnet[s["SubnetId"]]["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
            assert len(routes) == 1, f"{tier} {s['SubnetId']} has no default route"
            if tier == "public":
                assert routes[0].get("GatewayId", "").startswith("igw-")
            else:
                assert routes[0].get("NatGatewayId", "").startswith("nat-"), f"{tier} routes to the internet directly"


# ---- the security group chain ------------------------------------------------


def test_security_group_chain_is_exact(stack):
    sgs = security_groups(stack)
    gid = {name: sgs[f"{stack.prefix}-{name}"]["GroupId"] for name in
           ["bastion", "alb", "public-tier", "internal-tier", "database"]}
    assert ingress(sgs[f"{stack.prefix}-bastion"]) == {(22, stack.admin_cidr)}
    assert ingress(sgs[f"{stack.prefix}-alb"]) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert ingress(sgs[f"{stack.prefix}-public-tier"]) == {(8080, gid["alb"]), (22, gid["bastion"])}
    nlb_nodes = {(8081, cidr) for cidr in stack.vars["subnet_cidrs"]["internal_lb"]}
    public_hosts = {(8081, cidr) for cidr in stack.vars["subnet_cidrs"]["public_tier"]}
    assert ingress(sgs[f"{stack.prefix}-internal-tier"]) == {(22, gid["bastion"])} | public_hosts | nlb_nodes
    engine = stack.vars["database_engine"]
    expected_db = {(p, gid["internal-tier"]) for p in DB_PORTS[engine]}
    if engine == "mongodb":
        expected_db |= {(27017, gid["database"]), (22, gid["bastion"])}
    assert ingress(sgs[f"{stack.prefix}-database"]) == expected_db


def test_the_internal_tier_admits_the_public_tier_by_address_through_the_nlb(stack):
    """The NLB has no security group and preserves the client IP: the internal
    hosts see a public host's address, never its security group, so a rule
    naming the public tier's group would never match (AWS: "Target security
    groups" for Network Load Balancers). The public tier's subnets must be
    admitted by CIDR, and the target group must really preserve client IPs
    (otherwise the source is the NLB's own address and this rule is moot)."""
    sgs = security_groups(stack)
    rules_8081 = [p for p in sgs[f"{stack.prefix}-internal-tier"]["IpPermissions"] if p["FromPort"] == 8081]
    assert not [g for p in rules_8081 for g in p.get("UserIdGroupPairs", [])], "8081 admitted by security group"
    cidrs = {r["CidrIp"] for p in rules_8081 for r in p.get("IpRanges", [])}
    assert set(stack.vars["subnet_cidrs"]["public_tier"]) <= cidrs
    elb = stack.client("elbv2")
    tg = elb.describe_target_groups(Names=[f"{stack.prefix}-internal"])["TargetGroups"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert attrs.get("preserve_client_ip.enabled") == "true"


def test_nothing_but_the_alb_is_open_to_the_internet(stack):
    for name, sg in security_groups(stack).items():
        for port, source in ingress(sg):
            if source == "0.0.0.0/0":
                assert name == f"{stack.prefix}-alb" and port in (80, 443), f"{name} open to the internet on {port}"


def test_ssh_only_from_the_bastion_and_bastion_only_from_admins(stack):
    sgs = security_groups(stack)
    bastion = sgs[f"{stack.prefix}-bastion"]["GroupId"]
    for name, sg in sgs.items():
        for port, source in ingress(sg):
            if port == 22:
                expected = stack.admin_cidr if name == f"{stack.prefix}-bastion" else bastion
                assert source == expected, f"{name}: SSH from {source}"


def test_the_internal_tier_is_not_reachable_from_the_alb_or_the_internet(stack):
    sgs = security_groups(stack)
    sources = {s for _, s in ingress(sgs[f"{stack.prefix}-internal-tier"])}
    assert sgs[f"{stack.prefix}-alb"]["GroupId"] not in sources
    db_sources = {s for _, s in ingress(sgs[f"{stack.prefix}-database"])}
    assert sgs[f"{stack.prefix}-public-tier"]["GroupId"] not in db_sources
    assert not any("/" in s for s in db_sources), "database admits a CIDR"


# ---- instances and launch templates -------------------------------------------


def test_only_the_bastion_has_a_public_ip(stack):
    ec2 = stack.client("ec2")
    res = ec2.describe_instances(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]},
                                          {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    instances = [i for r in res["Reservations"] for i in r["Instances"]]
    tiers = {{t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("Tier") for i in instances}
    assert {"public", "internal", "bastion"} <= tiers, f"tier instances missing: {tiers}"
    for i in instances:
        tier = {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("Tier")
        if tier == "bastion":
            assert i.get("PublicIpAddress"), "the bastion needs a public IP"
            # ASG instances get IMDSv2 from the launch template (tested below);
            # moto does not copy it onto the instances it launches.
            assert i["MetadataOptions"]["HttpTokens"] == "required", "the bastion allows IMDSv1"
        else:
            assert not i.get("PublicIpAddress"), f"{tier} instance {i['InstanceId']} has a public IP"


@pytest.mark.parametrize("mode", ["public", "internal"])
def test_launch_templates_require_imdsv2_and_no_public_ip(stack, mode):
    ec2 = stack.client("ec2")
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"{stack.prefix}-{mode}")["LaunchTemplateVersions"]
    assert versions
    for v in versions:
        data = v["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpEndpoint"] == "enabled"
        for nic in data["NetworkInterfaces"]:
            assert nic["AssociatePublicIpAddress"] is False
            sg_names = {g["GroupName"] for g in ec2.describe_security_groups(GroupIds=nic["Groups"])["SecurityGroups"]}
            assert sg_names == {f"{stack.prefix}-{mode}-tier"}
        user_data = base64.b64decode(data["UserData"]).decode()
        assert "path: /etc/cinemo/cinemo.env" in user_data
        assert f"CINEMO_ENV={stack.env}\n" in user_data
        assert f"CINEMO__MODE={mode}\n" in user_data
        assert data["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{stack.prefix}-{mode}")
        assert all(b["Ebs"]["Encrypted"] for b in data["BlockDeviceMappings"])


# ---- load balancers and target groups ---------------------------------------------


def test_alb_is_internet_facing_https_with_http_redirect(stack):
    elb = stack.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{stack.prefix}-public"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing"
    public_subnets = {s["SubnetId"] for s in subnets_by_tier(stack)["public"]}
    assert {az["SubnetId"] for az in lb["AvailabilityZones"]} == public_subnets
    listeners = {listener["Port"]: listener for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert set(listeners) == {80, 443}
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"][0]["CertificateArn"].startswith("arn:aws:acm:")
    assert listeners[443]["DefaultActions"][0]["Type"] == "forward"
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"


def test_alb_waits_longer_than_a_batch_and_the_public_tier_keeps_connections_longer(stack):
    """The ALB's idle timeout as AWS holds it (not its 60 s default) outlasts
    the longest request, and the keep-alive published to the public tier
    outlasts it (tests/ops/stack/test_timeouts.py has the whole order)."""
    elb = stack.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{stack.prefix}-public"])["LoadBalancers"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    idle = int(attrs["idle_timeout.timeout_seconds"])
    assert idle > stack.vars["longest_batch_import_secs"]
    assert attrs["routing.http2.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    keep_alive = stack.client("ssm").get_parameter(
        Name=f"/cinemo/{stack.env}/public/env/CINEMO__HTTP__KEEP_ALIVE_SECS")["Parameter"]["Value"]
    assert int(keep_alive) > idle


def test_internal_nlb_is_internal_tcp_passthrough_in_its_own_subnets(stack):
    elb = stack.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{stack.prefix}-internal"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internal"
    lb_subnets = {s["SubnetId"] for s in subnets_by_tier(stack)["internal_lb"]}
    assert {az["SubnetId"] for az in lb["AvailabilityZones"]} == lb_subnets
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(listener["Port"], listener["Protocol"]) for listener in listeners] == [(8081, "TCP")]


def test_the_internal_nlb_has_a_private_name_the_public_tier_calls(stack):
    """The internal tier's certificate names internal.<env>.cinemo.internal, a
    name known before the NLB exists: an alias record in a private zone of the
    VPC, and the URL the public tier reads at boot."""
    r53 = stack.client("route53")
    zone_name = f"{stack.env}.cinemo.internal."
    zones = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == zone_name]
    assert len(zones) == 1 and zones[0]["Config"]["PrivateZone"] is True
    zone = r53.get_hosted_zone(Id=zones[0]["Id"])
    assert [v["VPCId"] for v in zone["VPCs"]] == [vpc_id(stack)]
    records = r53.list_resource_record_sets(HostedZoneId=zones[0]["Id"])["ResourceRecordSets"]
    name = f"internal.{zone_name}"
    alias = [r for r in records if r["Name"] == name and r["Type"] == "A"]
    nlb = stack.client("elbv2").describe_load_balancers(Names=[f"{stack.prefix}-internal"])["LoadBalancers"][0]
    assert len(alias) == 1 and alias[0]["AliasTarget"]["DNSName"].rstrip(".") == nlb["DNSName"]
    assert alias[0]["AliasTarget"]["HostedZoneId"] == nlb["CanonicalHostedZoneId"]
    url = stack.client("ssm").get_parameter(
        Name=f"/cinemo/{stack.env}/public/env/CINEMO__PUBLIC__INTERNAL_URL")["Parameter"]["Value"]
    assert url == f"https://internal.{stack.env}.cinemo.internal:8081"


def test_every_tls_file_the_tiers_require_is_in_ssm(stack):
    names = {p["Name"] for page in stack.client("ssm").get_paginator("get_parameters_by_path").paginate(
        Path=f"/cinemo/{stack.env}", Recursive=True) for p in page["Parameters"]}
    for mode, files in (("internal", ["server.crt", "server.key", "client-ca.crt"]),
                        ("public", ["client.crt", "client.key", "internal-ca.crt"])):
        for f in files:
            assert f"/cinemo/{stack.env}/{mode}/tls/{f}" in names


@pytest.mark.parametrize("mode", ["public", "internal"])
def test_target_groups_check_liveness_and_drain_long_enough(stack, mode):
    elb = stack.client("elbv2")
    tg = elb.describe_target_groups(Names=[f"{stack.prefix}-{mode}"])["TargetGroups"][0]
    assert tg["Port"] == TIER_PORTS[mode]
    if mode == "public":
        assert (tg["Protocol"], tg["HealthCheckProtocol"]) == ("HTTP", "HTTP")
        assert tg["HealthCheckPath"] == "/api/health/live"
        assert tg["Matcher"]["HttpCode"] == "200"
    else:
        assert (tg["Protocol"], tg["HealthCheckProtocol"]) == ("TCP", "TCP")
        assert tg.get("HealthCheckPath") in (None, "", "/"), "the internal tier is checked over TCP"
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert int(attrs["deregistration_delay.timeout_seconds"]) >= stack.vars["longest_batch_import_secs"] >= 30


# ---- autoscaling ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["public", "internal"])
def test_autoscaling_group_uses_elb_health_checks_in_private_subnets(stack, mode):
    asg = stack.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{stack.prefix}-{mode}"])["AutoScalingGroups"][0]
    assert asg["HealthCheckType"] == "ELB"
    assert 60 <= asg["HealthCheckGracePeriod"] <= 600
    tg_arn = stack.client("elbv2").describe_target_groups(Names=[f"{stack.prefix}-{mode}"])["TargetGroups"][0]["TargetGroupArn"]
    assert asg["TargetGroupARNs"] == [tg_arn]
    tier_subnets = {s["SubnetId"] for s in subnets_by_tier(stack)[f"{mode}_tier"]}
    assert set(asg["VPCZoneIdentifier"].split(",")) == tier_subnets
    assert asg["LaunchTemplate"]["LaunchTemplateName"] == f"{stack.prefix}-{mode}"
    assert re.fullmatch(r"\d+", asg["LaunchTemplate"]["Version"]), "pin a version so instance refresh can roll back"
    sizes = stack.vars["tiers"][mode]
    assert (asg["MinSize"], asg["MaxSize"]) == (sizes["min_size"], sizes["max_size"])
    assert asg["EnabledMetrics"], "group metrics collection is off"


@pytest.mark.parametrize("mode", ["public", "internal"])
def test_target_tracking_and_a_scale_up_before_the_17h_peak(stack, mode):
    autoscaling = stack.client("autoscaling")
    name = f"{stack.prefix}-{mode}"
    policies = autoscaling.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]
    metrics = {p["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
               for p in policies if p["PolicyType"] == "TargetTrackingScaling"}
    assert "ASGAverageCPUUtilization" in metrics
    if mode == "public":
        assert "ALBRequestCountPerTarget" in metrics
    actions = {a["ScheduledActionName"]: a for a in
               autoscaling.describe_scheduled_actions(AutoScalingGroupName=name)["ScheduledUpdateGroupActions"]}
    up, down = actions[f"{name}-peak-up"], actions[f"{name}-peak-down"]
    minute, hour = (int(x) for x in up["Recurrence"].split()[:2])
    assert (hour, minute) < (17, 0), "the peak scale-up must happen before 17:00"
    assert int(down["Recurrence"].split()[1]) > 17
    sizes = stack.vars["tiers"][mode]
    assert up["MinSize"] == sizes["peak_min_size"] and up["DesiredCapacity"] == sizes["peak_desired_capacity"]
    assert down["MinSize"] == sizes["min_size"]


# ---- IAM ------------------------------------------------------------------------------------

WILDCARD_OK = re.compile(r"^(ssm:UpdateInstanceInformation|ssmmessages:\w+|ec2messages:\w+|xray:PutTraceSegments)$")


def role_statements(stack, role):
    iam = stack.client("iam")
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert names == ["cinemo-least-privilege"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [], "no managed policies"
    doc = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(urllib.parse.unquote(doc))
    return doc["Statement"]


@pytest.mark.parametrize("mode", ["public", "internal"])
def test_instance_roles_are_scoped_to_our_arns(stack, mode):
    statements = role_statements(stack, f"{stack.prefix}-{mode}")
    account, region = "123456789012", stack.region
    allowed = {}
    for s in statements:
        assert s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        for a in actions:
            assert "*" not in a, f"wildcard action {a}"
            allowed.setdefault(a, set()).update(resources)
            if resources == ["*"]:
                assert WILDCARD_OK.match(a), f"{a} allowed on every resource"
                if a == "cloudwatch:PutMetricData":
                    assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Cinemo"}}
    streams = {f"arn:aws:kinesis:{region}:{account}:stream/{stack.prefix}-{n}" for n in ("diagnostics", "metrics")}
    assert allowed["kinesis:PutRecords"] == streams
    # The collector's awskinesis exporter describes its stream at start.
    assert allowed["kinesis:DescribeStream"] == {f"arn:aws:kinesis:{region}:{account}:stream/{stack.prefix}-metrics"}
    ssm = {f"arn:aws:ssm:{region}:{account}:parameter/cinemo/{stack.env}/{mode}",
           f"arn:aws:ssm:{region}:{account}:parameter/cinemo/{stack.env}/{mode}/*"}
    assert allowed["ssm:GetParametersByPath"] == ssm
    key_arn = stack.client("kms").describe_key(KeyId=f"alias/{stack.prefix}-ssm")["KeyMetadata"]["Arn"]
    assert allowed["kms:Decrypt"] == {key_arn}
    for r in allowed["logs:PutLogEvents"]:
        assert r.startswith(f"arn:aws:logs:{region}:{account}:log-group:/cinemo/{stack.env}/")
    assert not any(a.startswith(("iam:", "ec2:", "s3:", "sts:")) for a in allowed)


# ---- streams and parameters ----------------------------------------------------------------


def test_kinesis_streams_are_the_environments_own_provisioned_and_encrypted(stack):
    """Each environment's streams carry its name: two environments in one
    account and region never write to the same stream."""
    kinesis = stack.client("kinesis")
    names = set(kinesis.list_streams()["StreamNames"])
    assert {"cinemo-diagnostics", "cinemo-metrics"}.isdisjoint(names), "a stream shared by every environment"
    for name in (f"{stack.prefix}-diagnostics", f"{stack.prefix}-metrics"):
        s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        assert s["StreamModeDetails"]["StreamMode"] == "PROVISIONED"
        assert s["OpenShardCount"] == stack.vars["kinesis_shard_count"]
        assert s["EncryptionType"] == "KMS"


def test_parameters_follow_the_boot_layout_and_secrets_are_encrypted(stack):
    ssm = stack.client("ssm")
    params = ssm.get_parameters_by_path(Path=f"/cinemo/{stack.env}", Recursive=True)["Parameters"]
    by_name = {p["Name"]: p for p in params}
    base = f"/cinemo/{stack.env}"
    assert by_name[f"{base}/internal/env/CINEMO__STORAGE__URL"]["Type"] == "SecureString"
    assert by_name[f"{base}/public/env/CINEMO__PUBLIC__INTERNAL_URL"]["Value"].endswith(":8081")
    for mode in ("public", "internal"):
        assert by_name[f"{base}/{mode}/env/CINEMO__KINESIS__STREAM_NAME"]["Value"] == f"{stack.prefix}-diagnostics"
    for name, p in by_name.items():
        assert re.match(rf"^{base}/(public|internal)/(env|tls)/[A-Za-z0-9_.-]+$", name), name
        if "/tls/" in name or name.endswith("__URL") and "STORAGE" in name:
            assert p["Type"] == "SecureString", name


def test_database_is_private_encrypted_and_backed_up(stack):
    engine = stack.vars["database_engine"]
    if engine != "postgres":
        pytest.skip(f"{engine}: no RDS instance in this stack")
    db = stack.client("rds").describe_db_instances(DBInstanceIdentifier=stack.prefix)["DBInstances"][0]
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True
    assert db["BackupRetentionPeriod"] >= 1
    assert db["MultiAZ"] == stack.vars["rds_multi_az"]
    assert db["Engine"] == "postgres"
    sg_names = {g["GroupName"] for g in stack.client("ec2").describe_security_groups(
        GroupIds=[g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]])["SecurityGroups"]}
    assert sg_names == {f"{stack.prefix}-database"}
    data_subnets = {s["SubnetId"] for s in subnets_by_tier(stack)["data"]}
    assert {s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]} == data_subnets


# ---- day-one pieces ----------------------------------------------------------------------------

def test_the_alb_has_its_public_name(stack):
    r53 = stack.client("route53")
    zone = next(z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "cinemo.test.")
    records = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    alb = stack.client("elbv2").describe_load_balancers(Names=[f"{stack.prefix}-public"])["LoadBalancers"][0]
    mine = [r for r in records if r["Name"] == f"{stack.env}.cinemo.test." and r["Type"] == "A"]
    assert len(mine) == 1 and mine[0]["AliasTarget"]["DNSName"].rstrip(".").endswith(alb["DNSName"])
    assert mine[0]["AliasTarget"]["HostedZoneId"] == alb["CanonicalHostedZoneId"]


def test_hosts_reach_aws_apis_through_vpc_endpoints(stack):
    ec2 = stack.client("ec2")
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]}])["VpcEndpoints"]
    by_service = {e["ServiceName"].rsplit(".", 1)[1]: e for e in endpoints}
    wanted = stack.vars.get("vpc_endpoints_interface_services",
                            ["ssm", "ssmmessages", "ec2messages", "kinesis-streams", "monitoring", "logs", "xray"])
    data_subnets = {s["SubnetId"] for s in subnets_by_tier(stack)["data"]}
    sg = security_groups(stack)[f"{stack.prefix}-endpoints"]
    assert ingress(sg) == {(443, stack.vars["vpc_cidr"])}
    for service in wanted:
        e = by_service[service]
        assert e["VpcEndpointType"] == "Interface"
        assert set(e["SubnetIds"]) == data_subnets, f"{service}: one interface per AZ"
        assert [g["GroupId"] for g in e["Groups"]] == [sg["GroupId"]]
    s3 = by_service["s3"]
    assert s3["VpcEndpointType"] == "Gateway"
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id(stack)]},
                                                {"Name": "tag:Name", "Values": [f"{stack.prefix}-private-*"]}])["RouteTables"]
    assert sorted(s3["RouteTableIds"]) == sorted(t["RouteTableId"] for t in tables)


def test_every_log_group_has_a_retention(stack):
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=f"/cinemo/{stack.env}/")["logGroups"]
    assert {g["logGroupName"] for g in groups} == {f"/cinemo/{stack.env}/app", f"/cinemo/{stack.env}/metrics"}
    for g in groups:
        assert g.get("retentionInDays") == stack.vars["log_groups_retention_days"], g["logGroupName"]


ELB_LOG_ACCOUNTS = {"eu-west-1": "156460612806", "eu-central-1": "054676820928"}


def test_the_alb_writes_access_logs_to_a_private_bucket_elb_may_write_to(stack):
    elb = stack.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{stack.prefix}-public"])["LoadBalancers"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attrs["access_logs.s3.enabled"] == "true" and attrs["access_logs.s3.prefix"] == "alb"
    bucket = attrs["access_logs.s3.bucket"]
    account = stack.client("sts").get_caller_identity()["Account"]
    assert bucket == f"{stack.prefix}-alb-logs-{account}-{stack.region}"
    s3 = stack.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    write = next(st for st in policy["Statement"] if st["Effect"] == "Allow")
    assert write["Principal"] == {"AWS": f"arn:aws:iam::{ELB_LOG_ACCOUNTS[stack.region]}:root"}
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"arn:aws:s3:::{bucket}/alb/AWSLogs/{account}/*"
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", "ALB log delivery needs SSE-S3"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [stack.vars["load_balancers_access_logs_days"]]
