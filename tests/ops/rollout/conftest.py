"""Helpers for the rollout tests: import our Ansible modules as plain Python
(their logic takes a boto3 client), and stub AWS with botocore's Stubber."""

import importlib.util
import pathlib

import boto3
import pytest
from botocore.stub import Stubber

ROOT = pathlib.Path(__file__).resolve().parents[3]
ANSIBLE = ROOT / "ansible"


def load_module(role, name):
    path = ANSIBLE / "roles" / role / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def refresh_module():
    return load_module("rollout", "cinemo_instance_refresh")


@pytest.fixture
def template_module():
    return load_module("rollout", "cinemo_launch_template_ami")


def stubbed(service):
    client = boto3.client(service, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


class FakeClock:
    """time.monotonic/time.sleep stand-ins: sleeping advances the clock."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
