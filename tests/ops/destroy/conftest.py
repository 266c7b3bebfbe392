"""Fixtures for the destroy tests: they run after ansible/destroy.yml tore an
environment down on the suite's moto server (AWS_ENDPOINT_URL), for each
environment in CINEMO_AWS_ENVS, and read back what is left."""

import os
import pathlib

import boto3
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _inventory_vars(env):
    out = {}
    for f in sorted((ROOT / "ansible" / "inventories" / env / "group_vars" / "all").glob("*.yml")):
        out.update(yaml.safe_load(f.read_text()) or {})
    return out


def pytest_generate_tests(metafunc):
    if "env" in metafunc.fixturenames:
        metafunc.parametrize("env", os.environ.get("CINEMO_AWS_ENVS", "dev edge").split())


@pytest.fixture
def aws(env):
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        pytest.fail("AWS_ENDPOINT_URL must point at the moto server destroy.yml ran against (.ci/suites/aws.sh)")
    region = _inventory_vars(env)["aws_region"]

    def client(service):
        return boto3.client(service, region_name=region, endpoint_url=url)

    client.region = region
    client.vars = _inventory_vars(env)
    return client
