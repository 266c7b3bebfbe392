#!/bin/sh
# User data of the Packer build instance: install the SSM agent before
# Packer connects. Debian's AMIs ship none, and Packer reaches the instance
# only through Session Manager (ssh_interface = "session_manager"). The AMI
# keeps the agent, so Session Manager works on every host launched from it;
# the cinemo_host role checks that it is there and enabled.
#
# As the AWS Systems Manager User Guide documents ("Manually installing SSM
# Agent on Debian Server instances", "Verifying the signature of SSM
# Agent"): the .deb and its .sig from the instance's own Region's bucket,
# the signature checked against AWS's published key (the copy below is
# ansible/roles/cinemo_host/files/amazon-ssm-agent.asc) and its fingerprint.
# A good signature from that key is accepted even after the key's stated
# expiry, as AWS extends it: only VALIDSIG with the pinned fingerprint counts.
set -eu

SSM_AGENT_FPR=DE92C7DA3E56E92331D62A36BC1F495C97DD04ED

dearmor() {  # armored OpenPGP key on stdin -> binary keyring on stdout (gpgv reads that)
  python3 -c '
import base64, sys
lines = sys.stdin.read().strip().splitlines()
body = lines[lines.index("") + 1:-1]
sys.stdout.buffer.write(base64.b64decode("".join(l for l in body if not l.startswith("="))))'
}

# verify_deb KEY.asc SIG DEB: exit 0 only for a valid signature by SSM_AGENT_FPR.
verify_deb() {
  keyring=$(mktemp)
  dearmor <"$1" >"$keyring"
  status=$(gpgv --status-fd 1 --keyring "$keyring" "$2" "$3" 2>/dev/null || true)
  rm -f "$keyring"
  printf '%s\n' "$status" | grep -Eq "^\[GNUPG:\] VALIDSIG [0-9A-F]+ .* $SSM_AGENT_FPR\$"
}

install_agent() {
  imds=http://169.254.169.254/latest
  token=$(curl -sSf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token")
  region=$(curl -sSf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/placement/region")
  arch=$(dpkg --print-architecture)
  base="https://s3.$region.amazonaws.com/amazon-ssm-$region/latest/debian_$arch"
  dir=$(mktemp -d)
  curl -sSf --retry 5 -o "$dir/amazon-ssm-agent.deb" "$base/amazon-ssm-agent.deb"
  curl -sSf --retry 5 -o "$dir/amazon-ssm-agent.deb.sig" "$base/amazon-ssm-agent.deb.sig"
  cat >"$dir/key.asc" <<'KEY'
-----BEGIN PGP PUBLIC KEY BLOCK-----
Version: GnuPG v2.0.22 (GNU/Linux)

mQENBGTtIoIBCAD2M1aoGIE0FXynAHM/jtuvdAVVaX3Q4ZejTqrX+Jq8ElAMhxyO
GzHu2CDtCYxtVxXK3unptLVt2kGgJwNbhYC393jDeZx5dCda4Nk2YXX1UK3P461i
axuuXRzMYvfM4RZn+7bJTu635tA07q9Xm6MGD4TCTvsjBfViOxbrxOg5ozWbJdSw
fSR8MwUrRfmFpAefRlYfCEuZ8FHywa9U6jLeWt2O/kqrZliJOAGjGzXtB7EZkqKb
faCCxikjjvhF1awdEqSK4DQorC/OvQc4I5kP5y2CJbtXvXO73QH2yE75JMDIIx9x
rOsIRUoSfK3UrWaOVuAnEEn5ueKzZNqGG1J1ABEBAAG0J1NTTSBBZ2VudCA8c3Nt
LWFnZW50LXNpZ25lckBhbWF6b24uY29tPokBPwQTAQIAKQUCZO0iggIbLwUJAsaY
gAcLCQgHAwIBBhUIAgkKCwQWAgMBAh4BAheAAAoJELwfSVyX3QTt+icH/A//tJsW
I+7Ay8FGJh8dJPNy++HIBjVSFdGNJFWNbw1Z8uZcazHEcUCH3FhW4CLQLTZ3OVPz
qvFwzDtRDVIN/Y9EGDhLMFvimrE+/z4olWsJ5DANf6BnX8I5UNIcRt5d8SWH1BEJ
2FWIBZFgKyTDI6XzRC5x4ahtgpOVAGeeKDehs+wh6Ga4W0/K4GsviP1Kyr+Ic2br
NAIq0q0IHyN1q9zam3Y0+jKwEuNmTj+Bjyzshyv/X8S0JWWoXJhkexkOvWeBYNNt
5wI4QcSteyfIzp6KlQF8q11Hzz9D9WaPfcBEYyhq7vLEARobkbQMBzpkmaZua241
0RaWG50HRvrgm4aJAhwEEAECAAYFAmTtIoMACgkQfdCXo9rX9fwwqBAAzkTgYJ38
sWgxpn7Ux/81F2BWR1sVkmP79i++fXyJlKI8xtcJFQZhzeUos69KBUCy7mgx5bYU
P7NA5o9DUbwz/QS0i1Cqm4+jtFlX0MXe4FikXcqfDPnnzN8mVB2H+fa43iHR1PuH
GgUWuNdxzSoIYRmLZXWmeN5YXPcmixlhLzcE2TOQn1mOKcu2fKdLtBQ8KiEkmjiu
naoLxnUcyk1zMhaha+LzEkQdOyasix0ggylN2ViWVnlmfy0niuXDxW0qZWPdLStF
OODiX3iqGmkH3rDfy6nvxxBR4GIs+MGD72fpWzzrINDgkGI2i2t1+0AX/mps3aTy
+ftlgrim8stYWB58XXDAb0vad06sNye5/zDzfr0I9HupJrTzFhaYJQjWPaSlINto
LDJnBXohiUIPRYRcy/k012oFHDWZHT3H6CyjK9UD5UlxA9H7dsJurANs6FOVRe+7
34uJyxDZ/W7zLG4AVG0zxibrUSoaJxwcOjVPVsQAlrwG/GTs7tcAccsJqbJ1Py/w
9AgJl8VU2qc8POsHNXk348gjP7C8PDnGMpZFzr9f5INctRushpiv7onX+aWJVX7T
n2uX/TP3LCyH/MsrNJrJOQnMYFRLQitciP0E+F+eA3v9CY6mDuyb8JSx5HuGGUsG
S4bKBOcA8vimEpwPoT8CE7fdsZ3Qkwdu+pw=
=zr5w
-----END PGP PUBLIC KEY BLOCK-----
KEY
  if ! verify_deb "$dir/key.asc" "$dir/amazon-ssm-agent.deb.sig" "$dir/amazon-ssm-agent.deb"; then
    echo "amazon-ssm-agent.deb from $base is not signed by $SSM_AGENT_FPR: not installing it" >&2
    exit 1
  fi
  dpkg -i "$dir/amazon-ssm-agent.deb"
  systemctl enable --now amazon-ssm-agent.service
  rm -rf "$dir"
}

[ -n "${SSM_AGENT_USER_DATA_TEST:-}" ] || install_agent
