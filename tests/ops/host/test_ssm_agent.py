"""The SSM agent install in the Packer build instance's user data: the
signature check accepts only a valid signature by the pinned key."""
import re
import subprocess

import pytest

FPR = "DE92C7DA3E56E92331D62A36BC1F495C97DD04ED"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    """A throwaway signing key (the test cannot sign with AWS's)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "test <test@example.invalid>", "rsa2048", "sign", "1d"],
                   check=True, capture_output=True)
    out = subprocess.run([*gpg, "--with-colons", "--fingerprint"], check=True, capture_output=True, text=True).stdout
    fpr = re.search(r"^fpr:+([0-9A-F]{40}):", out, re.M).group(1)
    key = home / "key.asc"
    key.write_text(subprocess.run([*gpg, "--armor", "--export", fpr], check=True, capture_output=True, text=True).stdout)
    deb = home / "amazon-ssm-agent.deb"
    deb.write_bytes(b"!<arch>\nnot really a package\n")
    subprocess.run([*gpg, "--output", str(deb) + ".sig", "--detach-sign", str(deb)], check=True, capture_output=True)
    return {"fpr": fpr, "key": key, "deb": deb, "sig": str(deb) + ".sig"}


def verify(repo, key, sig, deb, fpr=None):
    script = repo / "packer" / "ssm-agent-user-data.sh"
    pin = f"SSM_AGENT_FPR={fpr}; " if fpr else ""
    return subprocess.run(["sh", "-c", f'. "{script}"; {pin}verify_deb "$1" "$2" "$3"', "sh", str(key), str(sig), str(deb)],
                          env={"PATH": "/usr/bin:/bin", "SSM_AGENT_USER_DATA_TEST": "1"}, capture_output=True).returncode


def test_a_good_signature_by_the_pinned_key_passes(repo, signer):
    assert verify(repo, signer["key"], signer["sig"], signer["deb"], fpr=signer["fpr"]) == 0


def test_a_tampered_package_fails(repo, signer, tmp_path):
    bad = tmp_path / "amazon-ssm-agent.deb"
    bad.write_bytes(signer["deb"].read_bytes() + b"x")
    assert verify(repo, signer["key"], signer["sig"], bad, fpr=signer["fpr"]) != 0


def test_a_signature_by_any_other_key_fails(repo, signer):
    """Without the override the pin is AWS's key: our own signature is refused."""
    assert verify(repo, signer["key"], signer["sig"], signer["deb"]) != 0


def test_user_data_carries_the_role_copy_of_aws_key(repo, tmp_path):
    text = (repo / "packer" / "ssm-agent-user-data.sh").read_text()
    key = (repo / "ansible/roles/cinemo_host/files/amazon-ssm-agent.asc").read_text().strip()
    assert key in text and f"SSM_AGENT_FPR={FPR}" in text
    shown = subprocess.run(["gpg", "--homedir", str(tmp_path), "--show-keys", "--with-colons"], input=key,
                           capture_output=True, text=True).stdout
    assert f"fpr:::::::::{FPR}:" in shown
