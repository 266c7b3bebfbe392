#!/bin/sh
# Bake-time smoke check, run as root on the build instance after host.yml.
# Starts the real cinemo.service (Type=notify, sandbox, watchdog) in a safe
# mode, asks `cinemo healthcheck`, checks what listens, then removes every
# trace so the AMI boots clean: no cinemo.env, no state, empty journal.
set -eu

fail() { echo "smoke: FAIL: $*" >&2; journalctl -u cinemo.service --no-pager -n 50 >&2 || true; exit 1; }

cleanup() {
  systemctl stop cinemo.service cinemo-bootstrap.service 2>/dev/null || true
  rm -rf /run/systemd/system/cinemo-bootstrap.service.d
  rm -f /etc/cinemo/cinemo.env /run/cinemo/secrets.env /run/cinemo/collector.env
  systemctl daemon-reload
  systemctl reset-failed cinemo.service cinemo-bootstrap.service 2>/dev/null || true
  rm -rf /var/lib/cinemo/* /var/lib/private/cinemo 2>/dev/null || true
}
trap cleanup EXIT

echo "smoke: $(/usr/local/bin/cinemo --version)"

for unit in cinemo.service cinemo-bootstrap.service otelcol-contrib.service; do
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
done

# Safe mode: no SSM at bake time (the bootstrap is replaced by a no-op for
# this boot only), both tiers on loopback, no telemetry export.
mkdir -p /run/systemd/system/cinemo-bootstrap.service.d
printf '[Service]\nExecStart=\nExecStart=/bin/true\n' \
  >/run/systemd/system/cinemo-bootstrap.service.d/smoke.conf
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
