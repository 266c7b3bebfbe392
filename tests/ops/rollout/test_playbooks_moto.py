"""rollout.yml and promote.yml end to end against moto, for everything moto
implements: AMI look-ups and tags, launch template versions, CopyImage,
alarm look-ups and muting. The instance refresh itself is skipped with
rollout_skip_instance_refresh (moto has none; test_instance_refresh.py
covers it with Stubber), and the test checks that the groups were NOT moved.

Needs ansible-playbook and the amazon.aws/community.aws collections
(source .ci/lib.sh; ensure_venv; ensure_ansible_collections)."""

import os
import shutil
import socket
import subprocess

import pytest
from moto.server import ThreadedMotoServer

from conftest import ANSIBLE
from moto_stack import client, make_ami, make_stack

REGION = "eu-central-1"  # edge and stable, as in their inventories


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    assert shutil.which("ansible-playbook"), "ansible-playbook not on PATH (ensure_venv)"
    assert os.environ.get("ANSIBLE_COLLECTIONS_PATH"), "ANSIBLE_COLLECTIONS_PATH unset (ensure_ansible_collections)"
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def deploy_alarms(endpoint, env):
    cw = client("cloudwatch", endpoint, REGION)
    for name in ("deploy-5xx", "deploy-unhealthy", "deploy-customer-failures", "deploy-in-progress"):
        cw.put_metric_alarm(AlarmName=f"cinemo-{env}-{name}", Namespace="AWS/ApplicationELB",
                            MetricName="RequestCount", Statistic="Sum", Period=60, EvaluationPeriods=1,
                            Threshold=1.0, ComparisonOperator="GreaterThanThreshold")


@pytest.fixture(scope="module")
def stacks(moto):
    tags = {"service": "cinemo", "version": "0.1.0", "git_sha": "aaaaaaaaaaaa", "channel": "edge", "arch": "x86_64"}
    old = make_ami(moto, REGION, "cinemo-edge-0.1.0-x86_64", tags)
    new = make_ami(moto, REGION, "cinemo-edge-0.2.0-x86_64",
                   {**tags, "version": "0.2.0", "git_sha": "bbbbbbbbbbbb"})
    for env in ("edge", "stable"):
        make_stack(moto, REGION, env, old)
        deploy_alarms(moto, env)
    return {"old": old, "new": new}


def play(endpoint, env, playbook, *extra, check=True):
    cmd = ["ansible-playbook", "-i", f"inventories/{env}", playbook, "-e", f"env={env}",
           "-e", f"aws_endpoint_url={endpoint}", "-e", "rollout_skip_instance_refresh=true", *extra]
    environ = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "ANSIBLE_FORCE_COLOR": "0"}
    done = subprocess.run(cmd, cwd=ANSIBLE, env=environ, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def template_images(endpoint, env):
    ec2 = client("ec2", endpoint, REGION)
    out = {}
    for tier in ("public", "internal"):
        versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"cinemo-{env}-{tier}")
        out[tier] = {v["VersionNumber"]: v["LaunchTemplateData"].get("ImageId")
                     for v in versions["LaunchTemplateVersions"]}
    return out


def group_versions(endpoint, env):
    asg = client("autoscaling", endpoint, REGION)
    return {tier: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"cinemo-{env}-{tier}"])
            ["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] for tier in ("public", "internal")}


def test_rollout_creates_versions_but_never_pretends_a_refresh(moto, stacks):
    done = play(moto, "edge", "rollout.yml", "-e", f"ami={stacks['new']}")
    assert "SKIPPED instance refresh of cinemo-edge-internal" in done.stdout
    assert "nothing was deployed" in done.stdout
    assert done.stdout.index("cinemo-edge-internal") < done.stdout.index("cinemo-edge-public")
    images = template_images(moto, "edge")
    assert images["public"][2] == stacks["new"] and images["internal"][2] == stacks["new"]
    assert group_versions(moto, "edge") == {"public": "1", "internal": "1"}

    again = play(moto, "edge", "rollout.yml", "-e", f"ami={stacks['new']}")
    assert "changed=0" in again.stdout
    assert len(template_images(moto, "edge")["public"]) == 2  # no third version


def test_rollout_refuses_an_unknown_ami(moto, stacks):
    done = play(moto, "edge", "rollout.yml", "-e", "ami=ami-00000000000000000", check=False)
    assert done.returncode != 0
    assert "is not an available AMI" in done.stdout


def test_promote_refuses_an_ami_that_did_not_pass(moto, stacks):
    done = play(moto, "stable", "promote.yml", "-e", f"ami={stacks['new']}", check=False)
    assert done.returncode != 0
    assert "did not pass on edge" in done.stdout


def test_promote_copies_the_tested_ami_and_rolls_it_out(moto, stacks):
    play(moto, "edge", "promote.yml", "-e", f"ami={stacks['new']}", "-e", "promote_mark_smoke_passed=true")
    ec2 = client("ec2", moto, REGION)
    source = ec2.describe_images(ImageIds=[stacks["new"]])["Images"][0]
    assert {t["Key"]: t["Value"] for t in source["Tags"]}["smoke"] == "passed"

    done = play(moto, "stable", "promote.yml", "-e", f"ami={stacks['new']}")
    copies = ec2.describe_images(Filters=[{"Name": "tag:source_ami", "Values": [stacks["new"]]}])["Images"]
    assert len(copies) == 1
    copy = copies[0]
    tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
    assert copy["ImageId"] != stacks["new"]
    assert tags["channel"] == "stable" and tags["git_sha"] == "bbbbbbbbbbbb" and tags["promoted_from"] == "edge"
    images = template_images(moto, "stable")
    assert images["public"][2] == copy["ImageId"] and images["internal"][2] == copy["ImageId"]
    assert "SKIPPED instance refresh of cinemo-stable-public" in done.stdout
    assert group_versions(moto, "stable") == {"public": "1", "internal": "1"}

    play(moto, "stable", "promote.yml", "-e", f"ami={stacks['new']}")  # idempotent: no second copy
    assert len(ec2.describe_images(Filters=[{"Name": "tag:source_ami", "Values": [stacks["new"]]}])["Images"]) == 1


def test_promote_without_ami_takes_what_edge_runs(moto, stacks):
    # edge's groups still run version 1 (old AMI, no smoke tag): refused, and the message names it
    done = play(moto, "stable", "promote.yml", check=False)
    assert done.returncode != 0
    assert stacks["old"] in done.stdout and "did not pass on edge" in done.stdout, done.stdout[-3000:]
