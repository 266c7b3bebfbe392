#!/usr/bin/env python3
"""Small read-only AWS look-ups the release steps need between playbooks.

    release_state.py manifest-ami MANIFEST [BUILD] the AMI of Packer's last run (build x86_64)
    release_state.py region ENV                    the env's AWS region (inventory)
    release_state.py current-ami ENV               the AMI both tiers of ENV run now
    release_state.py alarms ENV                    fail if any cinemo-ENV alarm is in ALARM
    release_state.py ami-tags AMI                  print an AMI's tags
    release_state.py moto-finish-refresh ENV       (moto only) move both groups to
                                                   their template's newest version

The playbooks change the stack; this only reads it, so the pipeline can
remember what ENV ran before a rollout (to roll back to it) and check that
a soak ended quietly. Honours AWS_ENDPOINT_URL (moto in CI) like boto3 does.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def die(msg):
    sys.exit(f"error: {msg}")


def inventory_vars(env):
    import yaml

    d = os.path.join(ROOT, "ansible", "inventories", env, "group_vars", "all")
    if not os.path.isdir(d):
        die(f"no inventory for {env!r} at {d}")
    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith((".yml", ".yaml")):
            with open(os.path.join(d, name)) as f:
                out.update(yaml.safe_load(f) or {})
    return out


def region(env):
    r = inventory_vars(env).get("aws_region")
    if not r:
        die(f"aws_region is not set in ansible/inventories/{env}")
    return r


def client(service, env=None):
    import boto3

    kw = {}
    if env:
        kw["region_name"] = region(env)
    if os.environ.get("AWS_ENDPOINT_URL"):
        kw["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return boto3.client(service, **kw)


def manifest_ami(path, build="x86_64"):
    """The AMI that build (the source's name: x86_64 or arm64) made in the last run."""
    with open(path) as f:
        m = json.load(f)
    run = m.get("last_run_uuid")
    builds = [b for b in m.get("builds", []) if b.get("packer_run_uuid") == run and b.get("name") == build]
    if not builds:
        die(f"{path} has no {build!r} build in its last run ({run})")
    # artifact_id is "region:ami-...[,region:ami-...]"; the first is the home region
    first = builds[-1]["artifact_id"].split(",")[0]
    ami = first.split(":", 1)[-1]
    if not ami.startswith("ami-"):
        die(f"unexpected artifact id in {path}: {builds[-1]['artifact_id']}")
    return ami


def current_ami(env):
    asg = client("autoscaling", env)
    ec2 = client("ec2", env)
    amis = {}
    for tier in ("public", "internal"):
        name = f"cinemo-{env}-{tier}"
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            die(f"Auto Scaling group {name} not found (is {env} provisioned?)")
        spec = groups[0].get("LaunchTemplate") or {}
        sel = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {
            "LaunchTemplateName": spec.get("LaunchTemplateName", name)}
        v = ec2.describe_launch_template_versions(Versions=[spec.get("Version") or "$Default"], **sel)
        amis[tier] = v["LaunchTemplateVersions"][0].get("LaunchTemplateData", {}).get("ImageId", "")
    if amis["public"] != amis["internal"]:
        print(f"warning: {env} tiers run different AMIs: {amis}", file=sys.stderr)
    return amis["public"]


def alarms(env):
    cw = client("cloudwatch", env)
    firing = []
    for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"cinemo-{env}"):
        firing += [a["AlarmName"] for a in page.get("MetricAlarms", []) if a.get("StateValue") == "ALARM"]
    if firing:
        die(f"{env} has alarms firing: {', '.join(firing)}")
    print(f"{env}: no cinemo-{env}* alarm in ALARM")


def ami_tags(ami, env=None):
    ec2 = client("ec2", env)
    img = ec2.describe_images(ImageIds=[ami])["Images"]
    if not img:
        die(f"AMI {ami} not found")
    return {t["Key"]: t["Value"] for t in img[0].get("Tags", [])}


def moto_finish_refresh(env):
    """What a successful instance refresh leaves behind, for moto, which has
    no instance refresh: each group on its launch template's newest version.
    The rehearsal (.ci/suites/release.sh) uses it after rollout.yml ran with
    CINEMO_SKIP_INSTANCE_REFRESH=1; it refuses any endpoint but loopback."""
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("AWS_ENDPOINT_URL", "")).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        die("moto-finish-refresh only talks to a local moto (AWS_ENDPOINT_URL on loopback)")
    asg = client("autoscaling", env)
    ec2 = client("ec2", env)
    for tier in ("public", "internal"):
        name = f"cinemo-{env}-{tier}"
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            die(f"Auto Scaling group {name} not found")
        spec = groups[0]["LaunchTemplate"]
        sel = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {
            "LaunchTemplateName": spec["LaunchTemplateName"]}
        latest = ec2.describe_launch_template_versions(Versions=["$Latest"], **sel)["LaunchTemplateVersions"][0]
        asg.update_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={**sel, "Version": str(latest["VersionNumber"])},
        )
        print(f"{name}: now on launch template version {latest['VersionNumber']} "
              f"({latest.get('LaunchTemplateData', {}).get('ImageId')})")


def main(argv):
    if len(argv) < 3:
        die(__doc__)
    cmd, arg = argv[1], argv[2]
    if cmd == "manifest-ami":
        print(manifest_ami(arg, *argv[3:4]))
    elif cmd == "region":
        print(region(arg))
    elif cmd == "current-ami":
        print(current_ami(arg))
    elif cmd == "alarms":
        alarms(arg)
    elif cmd == "ami-tags":
        env = argv[3] if len(argv) > 3 else None
        print(json.dumps(ami_tags(arg, env), indent=2, sort_keys=True))
    elif cmd == "moto-finish-refresh":
        moto_finish_refresh(arg)
    else:
        die(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
