"""A minimal cinemo stack in moto for the playbook tests: the pieces that
rollout.yml, promote.yml and monitoring.yml look up (load balancers, target
groups, launch templates, autoscaling groups, AMIs), named like
provision.yml names them. Not a substitute for provision.yml."""

import boto3


def client(service, endpoint, region):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def make_ami(endpoint, region, name, tags):
    ec2 = client("ec2", endpoint, region)
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(
        InstanceId=instance, Name=name,
        TagSpecifications=[{"ResourceType": "image",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    return image


def make_stack(endpoint, region, env, ami):
    """Launch templates (version 1 runs `ami`) and both ASGs, plus the ALB,
    NLB and target groups. Returns a dict of what was made."""
    prefix = f"cinemo-{env}"
    ec2 = client("ec2", endpoint, region)
    elb = client("elbv2", endpoint, region)
    asg = client("autoscaling", endpoint, region)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    made = {"subnets": subnets, "vpc": vpc}
    alb = elb.create_load_balancer(Name=f"{prefix}-public", Subnets=subnets, Type="application")
    nlb = elb.create_load_balancer(Name=f"{prefix}-internal", Subnets=subnets, Type="network",
                                   Scheme="internal")
    made["alb_arn"] = alb["LoadBalancers"][0]["LoadBalancerArn"]
    made["nlb_arn"] = nlb["LoadBalancers"][0]["LoadBalancerArn"]
    for tier, proto, port in (("public", "HTTP", 8080), ("internal", "TCP", 8081)):
        tg = elb.create_target_group(Name=f"{prefix}-{tier}", Protocol=proto, Port=port, VpcId=vpc)
        made[f"{tier}_tg_arn"] = tg["TargetGroups"][0]["TargetGroupArn"]
        ec2.create_launch_template(
            LaunchTemplateName=f"{prefix}-{tier}",
            LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro",
                                "MetadataOptions": {"HttpTokens": "required"}},
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"{prefix}-{tier}",
            LaunchTemplate={"LaunchTemplateName": f"{prefix}-{tier}", "Version": "1"},
            MinSize=1, MaxSize=2, DesiredCapacity=1, VPCZoneIdentifier=",".join(subnets),
            TargetGroupARNs=[made[f"{tier}_tg_arn"]], HealthCheckType="ELB",
            HealthCheckGracePeriod=120,
        )
    return made
