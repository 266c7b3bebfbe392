#!/usr/bin/env bash
# The host suite: systemd units (each unit's program run under its own
# seccomp filter), the host roles applied for real to a throwaway Debian
# root, ansible-lint, the Packer template, the collector config, the SSM
# bootstrap script and the IAM policies against their action table. Runs as
# root on Debian 12 (chroot, debootstrap). Needs CINEMO_BIN, a built cinemo
# binary to install.
#   CINEMO_BIN=target/release/cinemo .ci/suites/host.sh
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"
started=$SECONDS

[ "$(id -u)" = 0 ] || die "the host suite needs root (debootstrap, chroot)"
[ -n "${CINEMO_BIN:-}" ] || die "CINEMO_BIN is not set: point it at a built cinemo binary"
[ -x "$CINEMO_BIN" ] || die "CINEMO_BIN=$CINEMO_BIN is not an executable file"
CINEMO_BIN=$(realpath "$CINEMO_BIN")

# python3-seccomp, python3-boto3 (Debian's, as on a host), util-linux's
# setpriv and gpg: tests/ops/host runs the units' programs under their
# filters and checks the SSM agent's signature handling.
need_apt debootstrap packer systemd python3-venv tar zstd python3-seccomp python3-boto3 util-linux gpg gpgv
ensure_venv
ensure_ansible_collections

work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-host.XXXXXX")
root="$work/root"
_host_cleanup() {
  local m
  for m in "$root/var/cache/apt/archives" "$root/proc" "$root/dev/pts" "$root/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  rm -rf "$work"
  _ci_cleanup
}
trap _host_cleanup EXIT

units=(systemd/cinemo.service systemd/cinemo-bootstrap.service systemd/otelcol-contrib.service)

# ---- 1. units, statically -----------------------------------------------------
# verify resolves ExecStart= and dependencies inside --root: give it the host's
# stock units and stand-in binaries at the paths the units name.
log "systemd-analyze verify (no warnings allowed)"
vroot="$work/verify-root"
mkdir -p "$vroot/lib/systemd" "$vroot/etc/systemd/system" "$vroot/etc/cinemo"
cp -a /lib/systemd/system "$vroot/lib/systemd/"
for b in usr/local/bin/cinemo usr/local/sbin/cinemo-bootstrap usr/bin/otelcol-contrib; do
  mkdir -p "$vroot/$(dirname "$b")"; install -m 0755 /bin/true "$vroot/$b"
done
cp "${units[@]}" "$vroot/etc/systemd/system/"
for u in "${units[@]}"; do
  out=$(systemd-analyze verify --root="$vroot" "$(basename "$u")" 2>&1) || die "verify $u failed: $out"
  [ -z "$out" ] || die "systemd-analyze verify $u warned:\n$out"
  echo "ok   verify $u"
done

# systemd 252 takes the threshold on the 0..100 scale it uses internally
# (20 = the 2.0 printed); newer releases accept the same integer.
log "systemd-analyze security --offline=yes, exposure <= 2.0"
for u in "${units[@]}"; do
  out=$(systemd-analyze security --offline=yes --threshold=20 "$u" 2>&1) \
    || die "$u scores above 2.0:\n$(printf '%s\n' "$out" | grep -E '✗|Overall')"
  echo "ok   $(printf '%s\n' "$out" | grep Overall)"
done

# ---- 2. pytest: Packer template, collector config, SSM bootstrap vs moto ------
log "pytest tests/ops/host tests/ops/iam"
export CINEMO_BIN
pytest -q -p no:cacheprovider tests/ops/host tests/ops/iam

# ---- 3. packer validate with Debian's Packer 1.6.6 ---------------------------
# 1.6.6 predates `packer { required_plugins }` and amazon-ebs
# `metadata_options`; packer/to_packer16.py drops exactly those two blocks
# (pytest above asserts them on the real template) and 1.6.6 validates the rest.
log "packer validate ($(packer version | head -1), legacy-stripped template)"
mkdir -p "$work/packer"
ln -s "$CINEMO_ROOT/ansible" "$work/ansible"   # the template plays ${path.root}/../ansible/host.yml
python3 packer/to_packer16.py packer/cinemo.pkr.hcl >"$work/packer/cinemo.pkr.hcl"
cp packer/smoke.sh packer/smoke-ssm.py packer/ssm-agent-user-data.sh "$work/packer/"
(cd "$work/packer" && CHECKPOINT_DISABLE=1 PACKER_CONFIG_DIR="$work/packer" packer validate \
  -var "binary_x86_64=$CINEMO_BIN" -var "binary_arm64=$CINEMO_BIN" \
  -var version=0.0.0-ci -var git_sha=0000000 -var channel=edge .) || die "packer validate failed"
if (cd "$work/packer" && CHECKPOINT_DISABLE=1 PACKER_CONFIG_DIR="$work/packer" packer validate \
  -var "binary_x86_64=$CINEMO_BIN" -var "binary_arm64=$CINEMO_BIN" \
  -var version=0.0.0-ci -var git_sha=0000000 -var channel=beta . >/dev/null 2>&1); then
  die "packer validate accepted channel=beta"
fi
echo "ok   packer validate (and channel=beta rejected)"

# ---- 4. ansible-lint, production profile -----------------------------------
log "ansible-lint --offline --profile production"
(cd ansible && ansible-lint --offline --profile production host.yml roles/cinemo_host roles/otel_collector roles/iam) || die "ansible-lint failed"

# ---- 5. the host roles applied to a throwaway Debian root ---------------------
tarball="$CINEMO_CACHE/host/bookworm-minbase.tar.zst"
if [ ! -f "$tarball" ]; then
  log "debootstrap bookworm (cached as $tarball)"
  mkdir -p "$CINEMO_CACHE/host"
  build="$work/debootstrap"
  debootstrap --variant=minbase --include=python3,systemd,ca-certificates \
    bookworm "$build" http://deb.debian.org/debian >"$CINEMO_CACHE/logs/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $CINEMO_CACHE/logs/debootstrap.log"
  chroot "$build" apt-get clean
  tar -C "$build" --zstd -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$build"
fi
log "unpacking the throwaway root"
mkdir -p "$root"
tar -C "$root" --zstd -xf "$tarball"
# As in any Debian chroot: packages must not start services.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mkdir -p "$CINEMO_CACHE/host/apt-archives/partial"
mount --bind "$CINEMO_CACHE/host/apt-archives" "$root/var/cache/apt/archives"

cat >"$work/inventory.ini" <<INV
[bake]
$root ansible_connection=community.general.chroot ansible_python_interpreter=/usr/bin/python3 ansible_become=false
INV
printf '[defaults]\n' >"$work/ansible.cfg"
play() {
  ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_ROLES_PATH="$CINEMO_ROOT/ansible/roles" ANSIBLE_STDOUT_CALLBACK=default \
    ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_DEPRECATION_WARNINGS=false \
    ansible-playbook -i "$work/inventory.ini" ansible/host.yml \
    -e cinemo_binary_src="$CINEMO_BIN" -e otel_collector_install_package=false -e cinemo_host_ssm_agent=false "$@"
}
log "ansible-playbook ansible/host.yml (first run)"
play >"$work/run1.log" 2>&1 || { cat "$work/run1.log"; die "first run of host.yml failed"; }
tail -n 4 "$work/run1.log"
log "ansible-playbook ansible/host.yml (second run must change nothing)"
play >"$work/run2.log" 2>&1 || { cat "$work/run2.log"; die "second run of host.yml failed"; }
tail -n 4 "$work/run2.log"
grep -Eq "^$root +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "$work/run2.log" \
  || { grep -E 'changed:' "$work/run2.log"; die "second run was not idempotent (changed != 0)"; }

log "asserting the baked root"
CINEMO_BIN="$CINEMO_BIN" pytest -q -p no:cacheprovider tests/ops/host/check_baked_root.py --root "$root"

# The units must verify against the root's own systemd and files; the
# collector binary was not installed (no download in CI), so stand one in.
install -m 0755 /bin/true "$root/usr/bin/otelcol-contrib"
for u in cinemo.service cinemo-bootstrap.service otelcol-contrib.service; do
  out=$(systemd-analyze verify --root="$root" "$u" 2>&1) || die "verify $u in the baked root failed: $out"
  [ -z "$out" ] || die "systemd-analyze verify $u in the baked root warned:\n$out"
  echo "ok   verify $u inside the baked root"
done

log "host suite passed in $((SECONDS - started))s"
