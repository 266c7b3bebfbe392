#!/bin/sh
# Bake-time smoke check, run as root on the build instance after host.yml.
# Runs the real cinemo-bootstrap.service (sandbox, seccomp filter, IMDSv2)
# against a local stand-in for SSM (packer/smoke-ssm.py, uploaded by the
# template), then the real cinemo.service (Type=notify, sandbox, watchdog)
# in a safe mode, asks `cinemo healthcheck`, checks what listens, then
# removes every trace so the AMI boots clean: no cinemo.env, no state, no
# TLS files, empty journal.
set -eu

SMOKE_SSM=${SMOKE_SSM:-/tmp/cinemo-smoke-ssm.py}
SSM_PORT=48443
ssm_pid=

fail() {
  echo "smoke: FAIL: $*" >&2
  journalctl -u cinemo-bootstrap.service -u cinemo.service --no-pager -n 50 >&2 || true
  exit 1
}

cleanup() {
  systemctl stop cinemo.service cinemo-bootstrap.service 2>/dev/null || true
  [ -z "$ssm_pid" ] || kill "$ssm_pid" 2>/dev/null || true
  rm -rf /run/systemd/system/cinemo-bootstrap.service.d
  rm -f /etc/cinemo/cinemo.env /etc/cinemo/tls/* "$SMOKE_SSM"
  rm -rf /run/cinemo
  systemctl daemon-reload
  systemctl reset-failed cinemo.service cinemo-bootstrap.service 2>/dev/null || true
  rm -rf /var/lib/cinemo/* /var/lib/private/cinemo 2>/dev/null || true
}
trap cleanup EXIT

echo "smoke: $(/usr/local/bin/cinemo --version)"

for unit in cinemo.service cinemo-bootstrap.service otelcol-contrib.service; do
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
done

# The bootstrap, for real, under its own unit: only the SSM endpoint (and
# dummy keys: the stand-in checks no signature) differ from a host's boot.
python3 "$SMOKE_SSM" "$SSM_PORT" 2>/dev/null &
ssm_pid=$!
mkdir -p /run/systemd/system/cinemo-bootstrap.service.d
cat >/run/systemd/system/cinemo-bootstrap.service.d/smoke.conf <<UNIT
[Service]
Environment=CINEMO_SSM_ENDPOINT_URL=http://127.0.0.1:$SSM_PORT AWS_ACCESS_KEY_ID=smoke AWS_SECRET_ACCESS_KEY=smoke
UNIT
cat >/etc/cinemo/cinemo.env <<ENV
CINEMO_ENV=edge
CINEMO__MODE=internal
ENV
systemctl daemon-reload
for _ in $(seq 1 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $SSM_PORT), 1)" 2>/dev/null && break
  sleep 0.1
done
systemctl start cinemo-bootstrap.service || fail "cinemo-bootstrap.service failed"
grep -q '^CINEMO__LOG__LEVEL="info"$' /run/cinemo/secrets.env || fail "secrets.env lacks the parameter"
[ "$(stat -c '%U:%G %a' /run/cinemo/secrets.env)" = "root:cinemo 640" ] || fail "secrets.env owner/mode"
[ "$(stat -c '%U:%G %a' /etc/cinemo/tls/server.key)" = "root:cinemo 640" ] || fail "TLS file owner/mode"
grep -Eq '^CINEMO_INSTANCE_ID=i-[0-9a-f]+$' /run/cinemo/collector.env || fail "no instance id from IMDSv2"
echo "smoke: cinemo-bootstrap wrote secrets.env, collector.env and the TLS files edge.toml requires"

# Safe mode for cinemo (the bootstrap stays active: RemainAfterExit=yes):
# both tiers on loopback, no telemetry export.
cat >/etc/cinemo/cinemo.env <<ENV
CINEMO__MODE=all
CINEMO__OTLP__ENABLED=false
CINEMO__KINESIS__ENABLED=false
ENV
systemctl daemon-reload
# Type=notify: this returns only once cinemo has sent READY=1.
systemctl start cinemo.service || fail "cinemo.service did not become ready"

ok=0
for _ in $(seq 1 30); do
  if /usr/local/bin/cinemo healthcheck http://127.0.0.1:8080 \
     && /usr/local/bin/cinemo healthcheck http://127.0.0.1:8081; then ok=1; break; fi
  sleep 1
done
[ "$ok" = 1 ] || fail "cinemo healthcheck did not pass within 30 s"
echo "smoke: cinemo healthcheck passed on 8080 and 8081"

# Nothing but sshd may listen beyond loopback.
exposed=$(ss -Hlntu | awk '{print $5}' \
  | grep -Ev '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' \
  | grep -Ev ':22$' || true)
[ -z "$exposed" ] || fail "unexpected listeners: $exposed"
echo "smoke: only sshd listens beyond loopback"

# Stopping must finish well inside TimeoutStopSec (a clean drain).
start=$(date +%s)
systemctl stop cinemo.service
echo "smoke: cinemo stopped in $(( $(date +%s) - start )) s"

# Leave the image without this boot's logs or machine identity.
systemctl stop otelcol-contrib.service 2>/dev/null || true
journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null 2>&1 || true
echo "smoke: OK"
