"""Each unit's real ExecStart under that unit's own seccomp filter.

systemd-analyze verify and security score a unit without running it: a
filter that kills the unit's own program passes both. Here the filter is
expanded as systemd expands it (unit_sandbox.py), loaded with libseccomp,
and the program runs: cinemo-bootstrap against moto's SSM and an IMDSv2
stand-in (as root, with the unit's capability bounding set), cinemo serving
a customer round trip (as an unprivileged user with no capabilities).
The collector binary cannot be had here (docs/host.md says what proves its
unit instead). Needs root, Debian's python3-seccomp, python3-boto3 and
util-linux's setpriv (host.sh installs them) and CINEMO_BIN.
"""
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

import unit_sandbox
from test_bootstrap_ssm import CERT, KEY, REGION, cinemo_bin, free_port, imds_url  # noqa: F401 (fixture)

REPO = pathlib.Path(__file__).resolve().parents[3]
UNITS = REPO / "systemd"
BOOTSTRAP = REPO / "ansible/roles/cinemo_host/files/cinemo-bootstrap"


@pytest.fixture(scope="module", autouse=True)
def preconditions():
    assert os.geteuid() == 0, "runs the bootstrap as root, as its unit does"
    r = subprocess.run([unit_sandbox.SYSTEM_PYTHON, "-c", "import seccomp, boto3"], capture_output=True, text=True)
    assert r.returncode == 0, f"Debian's python3-seccomp and python3-boto3 are needed: {r.stderr}"


@pytest.fixture(scope="module")
def fake_ssm():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto keeps one backend per process: start from an empty Parameter Store.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    client = boto3.client("ssm", region_name=REGION, endpoint_url=url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    for name, value in (("env/CINEMO__STORAGE__TYPE", "sqlite"), ("tls/server.crt", CERT),
                        ("tls/server.key", KEY), ("tls/client-ca.crt", CERT)):
        client.put_parameter(Name=f"/cinemo/edge/internal/{name}", Value=value, Type="SecureString", Overwrite=True)
    yield url
    server.stop()


def run_bootstrap(unit, tmp_path, fake_ssm, imds_url):
    argv = unit_sandbox.exec_start(unit)
    assert argv == ["/usr/local/sbin/cinemo-bootstrap"], argv
    argv = [str(BOOTSTRAP), "--run-dir", str(tmp_path / "run"), "--tls-dir", str(tmp_path / "tls"),
            "--attempts", "2", "--cinemo-bin", cinemo_bin(), "--config-dir", str(REPO / "config")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CINEMO_ENV": "edge", "CINEMO__MODE": "internal",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "CINEMO_SSM_ENDPOINT_URL": fake_ssm, "CINEMO_IMDS_URL": imds_url}
    return subprocess.run(unit_sandbox.command(unit, argv), env=env,
                          capture_output=True, text=True, timeout=120)


def test_bootstrap_runs_under_its_own_filter(tmp_path, fake_ssm, imds_url):
    r = run_bootstrap(UNITS / "cinemo-bootstrap.service", tmp_path, fake_ssm, imds_url)
    assert not unit_sandbox.killed_by_sigsys(r.returncode), "the unit's seccomp filter killed cinemo-bootstrap"
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout.strip().splitlines()[-1])
    assert done["tls_files"] == ["client-ca.crt", "server.crt", "server.key"]
    assert done["instance_id"] == "i-0123456789abcdef0"
    key = tmp_path / "tls" / "server.key"
    assert oct(key.stat().st_mode & 0o777) == "0o640" and key.read_text() == KEY


def test_the_filter_is_what_kills_a_chown(tmp_path, fake_ssm, imds_url):
    """The harness can fail: the same script under a filter that keeps
    @privileged out, as this unit once did, dies of SIGSYS at its first chown."""
    unit = (UNITS / "cinemo-bootstrap.service").read_text()
    broken = tmp_path / "broken.service"
    broken.write_text("\n".join(line for line in unit.splitlines()
                                if not line.startswith(("SystemCallFilter=@chown", "SystemCallErrorNumber="))))
    spec = unit_sandbox.seccomp_spec(unit_sandbox.parse_unit(broken)["Service"])
    assert "fchownat" not in spec["allow"] and "chown" not in spec["allow"]
    r = run_bootstrap(broken, tmp_path, fake_ssm, imds_url)
    assert unit_sandbox.killed_by_sigsys(r.returncode), (r.returncode, r.stderr)


def test_bootstrap_under_its_filter_reads_the_bake_smoke_stand_in(tmp_path, imds_url):
    """packer/smoke.sh runs the unit against packer/smoke-ssm.py: the same
    pair, here, answers what the smoke check then asserts."""
    port = free_port()
    stand_in = subprocess.Popen([unit_sandbox.SYSTEM_PYTHON, str(REPO / "packer/smoke-ssm.py"), str(port)],
                                stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, stand_in)
        r = run_bootstrap(UNITS / "cinemo-bootstrap.service", tmp_path, f"http://127.0.0.1:{port}", imds_url)
    finally:
        stand_in.terminate()
        stand_in.wait()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "secrets.env").read_text().splitlines()[1:] == ['CINEMO__LOG__LEVEL="info"']
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["client-ca.crt", "server.crt", "server.key"]


def get(port, path, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body=body, headers={"content-type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def wait_listening(port, proc, secs=30):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}: {err[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"cinemo did not listen on {port} within {secs}s")


def test_cinemo_serves_under_its_own_filter():
    unit = UNITS / "cinemo.service"
    assert unit_sandbox.exec_start(unit) == ["/usr/local/bin/cinemo", "serve"]
    # The unit's StateDirectory=, owned by its user, on a path that user can resolve.
    work = pathlib.Path(tempfile.mkdtemp(prefix="cinemo-seccomp-"))
    os.chmod(work, 0o755)
    # The binary and config where the image puts them: readable by everyone,
    # wherever the checkout and the build live (CI builds under /root).
    binary, config = work / "cinemo", work / "config"
    shutil.copy2(cinemo_bin(), binary)
    shutil.copytree(REPO / "config", config)
    state = work / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    public, internal = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "CINEMO__MODE": "all", "CINEMO__OTLP__ENABLED": "false",
           "CINEMO__KINESIS__ENABLED": "false", "CINEMO_CONFIG_DIR": str(config),
           "CINEMO__PUBLIC__LISTEN": f"127.0.0.1:{public}", "CINEMO__INTERNAL__LISTEN": f"127.0.0.1:{internal}",
           "CINEMO__PUBLIC__INTERNAL_URL": f"http://127.0.0.1:{internal}"}
    argv = unit_sandbox.command(unit, [str(binary), "serve"], user="nobody", group="nogroup")
    proc = subprocess.Popen(argv, env=env, cwd=state, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(public, proc)
        status, body = get(public, "/api/customers", "POST", json.dumps({"name": "Ann Smith"}))
        assert status == 200, body
        customer = json.loads(body)["customerId"]
        status, body = get(public, f"/api/customers/{customer}")
        assert status == 200 and json.loads(body)["name"] == "Ann Smith", body
        hc = subprocess.run([cinemo_bin(), "healthcheck", f"http://127.0.0.1:{internal}"], capture_output=True)
        assert hc.returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work)
    assert not unit_sandbox.killed_by_sigsys(proc.returncode)


def test_every_unit_filter_expands(repo):
    """The collector cannot run here, but its filter must at least build."""
    for name in ("cinemo.service", "cinemo-bootstrap.service", "otelcol-contrib.service"):
        spec = unit_sandbox.seccomp_spec(unit_sandbox.parse_unit(UNITS / name)["Service"])
        assert {"read", "write", "execve", "exit_group"} <= set(spec["allow"]), name
        assert "reboot" not in spec["allow"] and "init_module" not in spec["allow"], name
