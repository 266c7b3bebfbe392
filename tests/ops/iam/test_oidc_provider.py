"""cinemo_iam_oidc_provider (the iam role's module for GitHub's OIDC
provider) against moto's IAM: creates once, then changes nothing. moto
answers AddClientIDToOpenIDConnectProvider with a 500, so adding the
audience to an existing provider is not tested here."""
import importlib.util
import pathlib
import socket
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

MODULE = pathlib.Path(__file__).resolve().parents[3] / "ansible/roles/iam/library/cinemo_iam_oidc_provider.py"
URL = "https://token.actions.githubusercontent.com"


@pytest.fixture()
def iam():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    yield boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    server.stop()


@pytest.fixture(scope="module")
def ensure():
    spec = importlib.util.spec_from_file_location("cinemo_iam_oidc_provider", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ensure


def test_creates_the_provider_once(iam, ensure):
    arn, changed = ensure(iam, URL, "sts.amazonaws.com", "6938fd4d98bab03faadb97b34396831e3780aea1", {"Application": "cinemo"})
    assert changed and arn.endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert ensure(iam, URL, "sts.amazonaws.com", "x", {}) == (arn, False)
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == ["sts.amazonaws.com"]

