"""cinemo-bootstrap against moto's SSM (and a tiny IMDSv2 stand-in), on 127.0.0.1.

The script asks the real cinemo binary (CINEMO_BIN) for its effective
settings, with the repository's config/ layers, as it does on a host."""
import http.server
import os
import pathlib
import socket
import stat
import subprocess
import sys
import threading
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

REPO = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = REPO / "ansible/roles/cinemo_host/files/cinemo-bootstrap"
REGION = "eu-west-1"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def cinemo_bin():
    path = os.environ.get("CINEMO_BIN")
    assert path and os.access(path, os.X_OK), "set CINEMO_BIN to a built cinemo binary"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ssm_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto keeps one backend per process: start from an empty Parameter Store.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def imds_url():
    class Imds(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            self._send(200 if ok else 400, "tok")

        def do_GET(self):
            if self.headers.get("X-aws-ec2-metadata-token") != "tok":
                return self._send(401, "")  # IMDSv1 is refused, as on our hosts
            body = {"/latest/meta-data/instance-id": "i-0123456789abcdef0",
                    "/latest/meta-data/placement/region": REGION}.get(self.path)
            self._send(200 if body else 404, body or "")

        def _send(self, code, body):
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def ssm(ssm_url):
    client = boto3.client("ssm", region_name=REGION, endpoint_url=ssm_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    put = lambda name, value, kind="SecureString": client.put_parameter(  # noqa: E731
        Name=name, Value=value, Type=kind, Overwrite=True)
    put("/cinemo/edge/internal/env/CINEMO__STORAGE__URL", 'postgres://cinemo:p"a$s@db:5432/cinemo')
    put("/cinemo/edge/internal/env/CINEMO__STORAGE__TYPE", "postgres", "String")
    put("/cinemo/edge/internal/tls/server.crt", CERT)
    put("/cinemo/edge/internal/tls/server.key", KEY)
    put("/cinemo/edge/internal/tls/client-ca.crt", CERT)
    put("/cinemo/edge/public/env/CINEMO__PUBLIC__INTERNAL_URL", "https://internal.edge:8081", "String")
    for name, value in (("client.crt", CERT), ("client.key", KEY), ("internal-ca.crt", CERT)):
        put(f"/cinemo/edge/public/tls/{name}", value)
    put("/cinemo/stable/internal/env/CINEMO__STORAGE__URL", "postgres://stable-only")
    put("/cinemo/stable/internal/env/CINEMO__INTERNAL__TLS__REQUIRED", "false", "String")
    # stable's public tier: TLS required (config/stable.toml), the CA missing.
    put("/cinemo/stable/public/env/CINEMO__PUBLIC__INTERNAL_URL", "https://internal.stable:8081", "String")
    put("/cinemo/stable/public/tls/client.crt", CERT)
    put("/cinemo/stable/public/tls/client.key", KEY)
    return client


def run(tmp_path, ssm_url, imds_url, env, mode, *extra):
    child_env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                     CINEMO_ENV=env, CINEMO__MODE=mode)
    for k in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        child_env.pop(k, None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--ssm-endpoint-url", ssm_url, "--imds-url", imds_url,
         "--run-dir", str(tmp_path / "run"), "--tls-dir", str(tmp_path / "tls"), "--attempts", "2",
         "--cinemo-bin", cinemo_bin(), "--config-dir", str(REPO / "config"), *extra],
        env=child_env, capture_output=True, text=True, timeout=60)


def parse_env_file(path):
    """Parse as systemd does for the double-quoted values the script writes."""
    out = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        assert value[0] == value[-1] == '"', line
        out[key] = value[1:-1].replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
    return out


def test_internal_host_gets_its_secrets_and_tls(tmp_path, ssm, ssm_url, imds_url):
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "old.pem").write_text("stale")
    r = run(tmp_path, ssm_url, imds_url, "edge", "internal")
    assert r.returncode == 0, r.stderr
    env = parse_env_file(tmp_path / "run" / "secrets.env")
    assert env == {"CINEMO__STORAGE__URL": 'postgres://cinemo:p"a$s@db:5432/cinemo',
                   "CINEMO__STORAGE__TYPE": "postgres"}
    assert stat.S_IMODE((tmp_path / "run" / "secrets.env").stat().st_mode) == 0o640
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["client-ca.crt", "server.crt", "server.key"]
    assert (tmp_path / "tls" / "server.crt").read_text().endswith("-----END CERTIFICATE-----\n")
    assert stat.S_IMODE((tmp_path / "tls" / "server.key").stat().st_mode) == 0o640
    collector = (tmp_path / "run" / "collector.env").read_text()
    assert f"AWS_REGION={REGION}\n" in collector and "CINEMO_INSTANCE_ID=i-0123456789abcdef0\n" in collector


def test_public_host_sees_only_its_own_prefix(tmp_path, ssm, ssm_url, imds_url):
    r = run(tmp_path, ssm_url, imds_url, "edge", "public")
    assert r.returncode == 0, r.stderr
    assert parse_env_file(tmp_path / "run" / "secrets.env") == {
        "CINEMO__PUBLIC__INTERNAL_URL": "https://internal.edge:8081"}
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["client.crt", "client.key", "internal-ca.crt"]


def test_region_from_environment_without_imds(tmp_path, ssm, ssm_url, imds_url):
    r = run(tmp_path, ssm_url, imds_url, "stable", "internal", "--no-imds", "--region", REGION)
    assert r.returncode == 0, r.stderr
    assert parse_env_file(tmp_path / "run" / "secrets.env") == {
        "CINEMO__STORAGE__URL": "postgres://stable-only", "CINEMO__INTERNAL__TLS__REQUIRED": "false"}
    assert "CINEMO_INSTANCE_ID=unknown" in (tmp_path / "run" / "collector.env").read_text()


@pytest.mark.parametrize("env,mode", [("edge", "all"), ("", "public"), ("Edge/..", "public")])
def test_refuses_a_bad_env_or_mode(tmp_path, ssm, ssm_url, imds_url, env, mode):
    r = run(tmp_path, ssm_url, imds_url, env, mode)
    assert r.returncode == 1
    assert "user data must set" in r.stderr
    assert not (tmp_path / "run" / "secrets.env").exists()


def test_fails_loudly_when_ssm_is_unreachable(tmp_path, imds_url):
    r = run(tmp_path, f"http://127.0.0.1:{free_port()}", imds_url, "edge", "internal")
    assert r.returncode == 1
    assert "reading SSM parameters under /cinemo/edge/internal/ failed after 2 attempts" in r.stderr


def test_required_tls_without_its_parameters_fails_once_and_names_them(tmp_path, ssm, ssm_url, imds_url):
    """config/stable.toml requires the public tier's mutual TLS; its CA is not
    in SSM. The boot stops here with the parameter to publish, instead of
    cinemo failing to start again and again."""
    r = run(tmp_path, ssm_url, imds_url, "stable", "public")
    assert r.returncode == 1
    assert "public.internal_tls.required is true but this host lacks: " \
        "SSM parameter /cinemo/stable/public/tls/internal-ca.crt (for /etc/cinemo/tls/internal-ca.crt)" in r.stderr
    assert "retrying" not in r.stderr, "a missing parameter is not a passing fault: no retries"


def test_required_tls_switched_off_in_ssm_needs_no_files(tmp_path, ssm, ssm_url, imds_url):
    """internal.tls.required = false from SSM (the reviewed opt-out) is the
    setting cinemo will see, so the check follows it."""
    r = run(tmp_path, ssm_url, imds_url, "stable", "internal", "--no-imds", "--region", REGION)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "tls").iterdir()) == []


def test_a_configuration_cinemo_refuses_fails_the_boot(tmp_path, ssm, ssm_url, imds_url, monkeypatch):
    monkeypatch.setenv("CINEMO__INTERNAL__TLS__REQUIRED", "maybe")
    r = run(tmp_path, ssm_url, imds_url, "edge", "internal")
    assert r.returncode == 1
    assert "cinemo refuses its configuration: " in r.stderr
