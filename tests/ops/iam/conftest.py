import json
import os
import pathlib
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
TABLE = REPO / "ansible/roles/iam/files/aws-actions.yml"


@pytest.fixture(scope="session")
def table():
    return yaml.safe_load(TABLE.read_text())["principals"]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Each policy as the iam role renders it, for the edge inventory's names."""
    out = tmp_path_factory.mktemp("policies")
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    r = subprocess.run(
        ["ansible-playbook", "-i", str(REPO / "ansible/inventories/edge/hosts.yml"), str(pathlib.Path(__file__).parent / "render.yml"),
         "-e", f"out={out}"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
