"""Run by .ci/suites/host.sh after host.yml was applied to a throwaway root:
pytest tests/ops/host/check_baked_root.py --root DIR (CINEMO_BIN set)."""
import filecmp
import os
import pathlib
import stat

import pytest


@pytest.fixture(scope="module")
def root(request):
    r = request.config.getoption("--root")
    if not r:
        pytest.fail("--root DIR is required")
    return pathlib.Path(r)


def ids(root, db):
    """name -> id from the root's own /etc/passwd or /etc/group, not the CI host's."""
    out = {}
    for line in (root / "etc" / db).read_text().splitlines():
        f = line.split(":")
        out[f[0]] = int(f[2])
    return out


def owned(root, rel, user, group, mode, kind=stat.S_ISREG):
    st = os.lstat(root / rel)
    assert kind(st.st_mode), rel
    assert st.st_uid == ids(root, "passwd")[user], f"{rel} owner"
    assert st.st_gid == ids(root, "group")[group], f"{rel} group"
    assert stat.S_IMODE(st.st_mode) == mode, f"{rel} mode {oct(stat.S_IMODE(st.st_mode))}"


def test_the_binary_is_the_one_we_built(root):
    owned(root, "usr/local/bin/cinemo", "root", "root", 0o755)
    assert filecmp.cmp(root / "usr/local/bin/cinemo", os.environ["CINEMO_BIN"], shallow=False)


def test_cinemo_user_is_unprivileged(root):
    passwd = {l.split(":")[0]: l.split(":") for l in (root / "etc/passwd").read_text().splitlines()}
    user = passwd["cinemo"]
    assert int(user[2]) < 1000 and int(user[2]) != 0, "a system user, not root"
    assert user[6] == "/usr/sbin/nologin"
    collector = passwd["otelcol-contrib"]
    assert collector[6] == "/usr/sbin/nologin"
    journal = [l for l in (root / "etc/group").read_text().splitlines() if l.startswith("systemd-journal:")]
    assert "otelcol-contrib" in journal[0].split(":")[3].split(",")


def test_config_and_tls_are_root_owned_and_cinemo_readable(root):
    owned(root, "etc/cinemo", "root", "cinemo", 0o750, stat.S_ISDIR)
    owned(root, "etc/cinemo/tls", "root", "cinemo", 0o750, stat.S_ISDIR)
    for name in ("default.toml", "dev.toml", "edge.toml", "stable.toml"):
        owned(root, f"etc/cinemo/{name}", "root", "cinemo", 0o640)
    assert not (root / "etc/cinemo/cinemo.env").exists(), "user data writes cinemo.env, never the AMI"
    assert not any((root / "etc/cinemo/tls").iterdir()), "no TLS material baked in"


def test_units_bootstrap_and_dropin_are_installed(root):
    for u in ("cinemo.service", "cinemo-bootstrap.service", "otelcol-contrib.service"):
        owned(root, f"etc/systemd/system/{u}", "root", "root", 0o644)
        link = root / "etc/systemd/system/multi-user.target.wants" / u
        assert os.readlink(link) == f"/etc/systemd/system/{u}", f"{u} not enabled"
    owned(root, "usr/local/sbin/cinemo-bootstrap", "root", "root", 0o755)
    dropin = (root / "etc/systemd/system/cinemo.service.d/10-shutdown.conf").read_text()
    # The longest deadline of the baked config files (edge/stable: 120 s)
    # plus the 15 s margin; the deadline itself stays the files' to set.
    assert "TimeoutStopSec=135s" in dropin.splitlines()
    assert "CINEMO__SHUTDOWN__TIMEOUT_SECS" not in dropin, "an environment variable would override every file's deadline"


def test_collector_config_is_installed(root):
    owned(root, "etc/otelcol-contrib", "root", "otelcol-contrib", 0o750, stat.S_ISDIR)
    owned(root, "etc/otelcol-contrib/config.yaml", "root", "otelcol-contrib", 0o640)


def test_os_baseline(root):
    journald = (root / "etc/systemd/journald.conf.d/50-cinemo.conf").read_text().splitlines()
    assert "Storage=persistent" in journald and "SystemMaxUse=1G" in journald
    chrony = (root / "etc/chrony/chrony.conf").read_text()
    assert "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4" in chrony
    assert "cmdport 0" in chrony.splitlines()
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/chrony.service")
    auto = (root / "etc/apt/apt.conf.d/20auto-upgrades").read_text()
    assert 'APT::Periodic::Unattended-Upgrade "1";' in auto
    assert (root / "usr/bin/unattended-upgrade").exists()
    for masked in ("rpcbind.service", "exim4.service", "avahi-daemon.socket"):
        assert os.readlink(root / "etc/systemd/system" / masked) == "/dev/null"
    assert (root / "usr/lib/python3/dist-packages/boto3").is_dir(), "cinemo-bootstrap needs boto3"
