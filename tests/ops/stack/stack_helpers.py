"""Helpers for the stack role tests (the `moto` fixture is in conftest.py): a moto server of the test's own, behind a
recorder that keeps every AWS request the playbooks send (so a test can say
what was, and was not, asked of AWS), and a runner for small playbooks that
apply the real roles under ansible/roles with an environment's inventory.

Needs ansible-playbook and the amazon.aws/community.aws collections
(source .ci/lib.sh; ensure_venv; ensure_ansible_collections)."""

import http.client
import http.server
import json
import logging
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import urllib.parse

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[3]
ANSIBLE = ROOT / "ansible"
PLAYBOOKS = pathlib.Path(__file__).parent / "playbooks"
# moto's server logs every request; a failing test shows the playbook instead.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An HTTP front for moto that records each request as
    {"service", "action", "params"} and forwards it unchanged."""

    def __init__(self, upstream_port):
        self.calls = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.record(self.command, self.path, self.headers, body)
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, method, path, headers, body):
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
        service = scope.group(1) if scope else ""
        target = headers.get("X-Amz-Target")
        params = {}
        if target:
            action = target.split(".")[-1]
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
        elif body and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
            params = dict(urllib.parse.parse_qsl(body.decode()))
            action = params.pop("Action", "")
        else:  # REST protocols (S3, Route 53): the method and path say it
            action = f"{method} {urllib.parse.urlsplit(path).path}"
            params = {"body": body.decode(errors="replace")}
        with self._lock:
            self.calls.append({"service": service, "action": action, "params": params})

    def clear(self):
        with self._lock:
            self.calls.clear()

    def actions(self, service=None):
        return [c["action"] for c in self.calls if service is None or c["service"] == service]

    def find(self, action):
        return [c["params"] for c in self.calls if c["action"] == action]

    def stop(self):
        self.server.shutdown()


def client(moto, service, region):
    return boto3.client(service, endpoint_url=moto.direct_url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def recap(stdout):
    """The PLAY RECAP counters of localhost, e.g. {"ok": 9, "changed": 0, ...}."""
    line = [x for x in stdout.splitlines() if re.match(r"^localhost\s+:", x)]
    assert line, "no PLAY RECAP in:\n" + stdout[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line[-1])}


def play(moto, env, playbook, extra_vars, tmp_path, *args, check=True, environ=None):
    """Run ansible/ roles through tests/ops/stack/playbooks/PLAYBOOK for ENV's
    inventory against the recording moto (None: a play that calls no AWS API),
    with the process environment updated by `environ` (other credentials).
    Returns the CompletedProcess."""
    vars_file = tmp_path / f"vars-{len(list(tmp_path.glob('vars-*')))}.json"
    vars_file.write_text(json.dumps({**({"aws_endpoint_url": moto.url} if moto else {}), **extra_vars}))
    cmd = ["ansible-playbook", "-i", f"inventories/{env}", str(PLAYBOOKS / playbook), "-e", f"env={env}",
           "-e", f"@{vars_file}", "-e", "ansible_python_interpreter=" + sys.executable, *args]
    extra_env = environ
    environ = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    environ.pop("AWS_SESSION_TOKEN", None)
    environ.update(extra_env or {})
    done = subprocess.run(cmd, cwd=ANSIBLE, env=environ, capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done
