"""The collector package download: a pinned digest, or the release's checksums
file while none is pinned; a package that matches neither is refused.

Runs the role's download tasks with ansible-playbook against a package and a
checksums file served on 127.0.0.1."""
import hashlib
import http.server
import os
import sys
import subprocess
import threading

import pytest

VERSION = "0.115.1"
DEB = f"otelcol-contrib_{VERSION}_linux_amd64.deb"
SUMS = "opentelemetry-collector-releases_otelcol-contrib_checksums.txt"
PACKAGE = b"!<arch>\nnot really a package, but bytes with a digest\n"


@pytest.fixture()
def release(tmp_path):
    """A fake release directory on a loopback HTTP server: (dir, base URL)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / DEB).write_bytes(PACKAGE)
    digest = hashlib.sha256(PACKAGE).hexdigest()
    (site / SUMS).write_text(f"{'0' * 64}  otelcol-contrib_{VERSION}_linux_arm64.deb\n{digest}  {DEB}\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(site), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def download(repo, tmp_path, base, pin):
    """Run the role's download tasks; returns (returncode, output, dest)."""
    dest = tmp_path / "collector.deb"
    play = tmp_path / "play.yml"
    play.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: otel_collector
        tasks_from: download.yml
      vars:
        otel_collector_version: "{VERSION}"
        otel_collector_deb_arch: amd64
        otel_collector_package_url: "{base}/{DEB}"
        otel_collector_checksums_url: "{base}/{SUMS}"
        otel_collector_package_dest: "{dest}"
        otel_collector_package_owner: "{os.getuid()}"
        otel_collector_package_sha256: {{amd64: "{pin}", arm64: ""}}
""")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(repo / "ansible" / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"))
    run = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(play),
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         env=env, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr, dest


def test_a_pinned_digest_is_checked(repo, tmp_path, release):
    _, base = release
    rc, out, dest = download(repo, tmp_path, base, hashlib.sha256(PACKAGE).hexdigest())
    assert rc == 0, out
    assert dest.read_bytes() == PACKAGE
    assert "no digest is pinned" not in out


def test_a_package_that_does_not_match_its_pin_is_refused(repo, tmp_path, release):
    _, base = release
    rc, out, dest = download(repo, tmp_path, base, "1" * 64)
    assert rc != 0
    assert "did not match" in out or "checksum" in out.lower(), out
    assert not dest.exists()


def test_unpinned_uses_the_release_checksums_file_and_prints_the_digest(repo, tmp_path, release):
    _, base = release
    rc, out, dest = download(repo, tmp_path, base, "")
    assert rc == 0, out
    assert dest.read_bytes() == PACKAGE
    assert "no digest is pinned" in out
    assert f"otel_collector_package_sha256.amd64: \\\"{hashlib.sha256(PACKAGE).hexdigest()}" in out, out


def test_unpinned_refuses_a_package_the_checksums_file_does_not_list(repo, tmp_path, release):
    site, base = release
    (site / DEB).write_bytes(PACKAGE + b"tampered")
    rc, out, dest = download(repo, tmp_path, base, "")
    assert rc != 0, out
    assert not dest.exists()


def test_a_malformed_pin_is_refused_before_any_download(repo, tmp_path, release):
    _, base = release
    rc, out, dest = download(repo, tmp_path, base, "ABC")
    assert rc != 0
    assert "must be empty or a lowercase" in out
    assert not dest.exists()
