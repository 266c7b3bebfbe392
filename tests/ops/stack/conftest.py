"""The moto server each stack test module gets: moto behind a request
recorder (stack_helpers.Recorder)."""

import os
import shutil

import pytest
from moto.server import ThreadedMotoServer

from stack_helpers import Recorder, free_port


@pytest.fixture(scope="module")
def moto():
    assert shutil.which("ansible-playbook"), "ansible-playbook not on PATH (ensure_venv)"
    assert os.environ.get("ANSIBLE_COLLECTIONS_PATH"), "ANSIBLE_COLLECTIONS_PATH unset (ensure_ansible_collections)"
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    recorder = Recorder(port)
    recorder.direct_url = f"http://127.0.0.1:{port}"
    yield recorder
    recorder.stop()
    server.stop()
