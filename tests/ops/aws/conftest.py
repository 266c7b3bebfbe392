"""Fixtures for the AWS stack tests.

They run after provision.yml (and monitoring.yml) against the same moto
server: AWS_ENDPOINT_URL must point at it. Which environments were built
comes from CINEMO_AWS_ENVS (default: "dev edge").
"""

import os
import pathlib
import sys
from dataclasses import dataclass

import boto3
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from prepare_moto import CI_ADMIN_CIDR  # noqa: E402


@dataclass
class Stack:
    env: str
    region: str
    prefix: str
    vars: dict
    admin_cidr: str

    def client(self, service):
        return boto3.client(service, region_name=self.region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def _inventory_vars(env):
    out = {}
    for f in sorted((ROOT / "ansible" / "inventories" / env / "group_vars" / "all").glob("*.yml")):
        out.update(yaml.safe_load(f.read_text()) or {})
    return out


def pytest_generate_tests(metafunc):
    if "stack" in metafunc.fixturenames:
        envs = os.environ.get("CINEMO_AWS_ENVS", "dev edge").split()
        metafunc.parametrize("stack", envs, indirect=True)


@pytest.fixture(scope="session")
def _endpoint():
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        pytest.fail("AWS_ENDPOINT_URL must point at a moto server on 127.0.0.1 (run .ci/suites/aws.sh)")
    return url


@pytest.fixture
def stack(request, _endpoint):
    env = request.param
    v = _inventory_vars(env)
    return Stack(env=env, region=v["aws_region"], prefix=f"cinemo-{env}", vars=v, admin_cidr=CI_ADMIN_CIDR)
