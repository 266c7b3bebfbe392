#!/usr/bin/env bash
# The release suite: every step of the post-merge workflow that can run on
# CI's own machine, with the same scripts, in the same order.
#
#   1. workflow validation     .ci/steps/validate-workflows.sh (action-validator)
#   2. supply chain            .ci/steps/deny.sh (offline RustSec snapshot)
#   3. release build           .ci/steps/release-build.sh: x86_64 only here (no
#                              aarch64 standard library), checksum and SBOM printed
#   4. pipeline rehearsal, against moto on loopback:
#        bake (twice)                .ci/steps/bake.sh (Packer 1.6.6, communicator none):
#                                    the "running" release and this one
#        provision edge and stable   ansible/provision.yml + monitoring.yml on the first
#        rollout to edge             .ci/steps/rollout.sh -> ansible/rollout.yml
#        smoke                       .ci/steps/smoke.sh against a local `cinemo --mode all`
#        automatic rollback          smoke against a broken deployment must fail,
#                                    then .ci/steps/rollback.sh restores edge
#        mark passed                 .ci/steps/mark-passed.sh (smoke=passed tag)
#        promotion to stable         .ci/steps/soak-check.sh, .ci/steps/promote.sh
#                                    -> ansible/promote.yml (copy, channel=stable), smoke
#
# A piece that does not exist yet fails the suite with its name: nothing is
# skipped. Servers bind 127.0.0.1 only and stop when the suite exits.
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"
steps="$CINEMO_ROOT/.ci/steps"
started=$SECONDS
passed=0
step() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }

# ---- 1. workflows -------------------------------------------------------------
log "1/4 workflow validation"
"$steps/validate-workflows.sh"
step "workflows validate (action-validator, pinned actions, steps are scripts)"

# ---- 2. cargo deny ------------------------------------------------------------
log "2/4 cargo deny"
"$steps/deny.sh" --hide-inclusion-graph
step "cargo deny: advisories, licenses, bans, sources"

# ---- 3. release build -----------------------------------------------------------
log "3/4 release build"
export CINEMO_DIST="$CINEMO_CACHE/dist"
rm -rf "$CINEMO_DIST"
"$steps/release-build.sh"
host=$(rustc -vV | sed -n 's/^host: //p')
# shellcheck disable=SC1090
source "$(ls "$CINEMO_DIST"/cinemo-*-"$host".env)"
export CINEMO_BIN="$CINEMO_DIST/$CINEMO_BINARY"
"$steps/verify-dist.sh" "$CINEMO_DIST"
"$CINEMO_BIN" --version | grep -q "$CINEMO_GIT_SHA" \
  || die "cinemo --version does not report the git sha $CINEMO_GIT_SHA: $("$CINEMO_BIN" --version)"
"$CINEMO_BIN" --version | grep -q "edge" \
  || die "cinemo --version does not report the edge channel: $("$CINEMO_BIN" --version)"
step "release build $CINEMO_BINARY with checksum and SBOM ($("$CINEMO_BIN" --version))"

# ---- 4. pipeline rehearsal ------------------------------------------------------
log "4/4 pipeline rehearsal against moto"
"$CINEMO_BIN" smoke --help >/dev/null 2>&1 \
  || die "the release binary has no 'smoke' command yet (cinemo smoke --url URL, docs/interfaces.md)"
for play in provision.yml monitoring.yml rollout.yml; do
  [ -f "ansible/$play" ] || die "ansible/$play does not exist yet: the rehearsal rolls out with it"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-release.XXXXXX")
trap 'rm -rf "$work"; _ci_cleanup' EXIT
export CINEMO_RELEASE_STATE="$work/state"

start_moto
echo "moto on $AWS_ENDPOINT_URL"
source "$steps/_ansible.sh"
ensure_ansible_collections  # once, before plays run side by side
# moto has no instance refresh: rollout.yml's documented CI mode creates the
# launch template versions and replaces no instance. finish_refresh then
# leaves the groups where a successful refresh would (release_state.py).
export CINEMO_SKIP_INSTANCE_REFRESH=1
# moto has no composite alarms either: monitoring.yml's CI switch.
export CINEMO_SKIP_COMPOSITE_ALARM=1
finish_refresh() { python3 "$steps/release_state.py" moto-finish-refresh "$1"; }
runs_now() { python3 "$steps/release_state.py" current-ami "$1"; }
bake_ami() {
  "$steps/bake.sh" --channel edge --env edge --dist "$CINEMO_DIST" >"$work/$1.out" \
    || { cat "$work/$1.out" >&2; die "bake.sh failed ($1)"; }
  sed -n 's/^ami=//p' "$work/$1.out" | tail -n 1
}

# Two bakes of the release binaries: the first stands for the release the
# stacks run today (what a rollback returns to), the second is this release.
old_ami=$(bake_ami bake-old)
sleep 1  # AMI names carry a timestamp to the second
ami=$(bake_ami bake)
[ -n "$old_ami" ] && [ -n "$ami" ] || die "bake.sh reported no AMI"
cat "$work/bake.out"
step "baked $ami (channel=edge, version $CINEMO_VERSION, git sha $CINEMO_GIT_SHA) with Packer $(packer version | head -n 1)"

# The stacks the release rolls into: they exist in AWS; here moto starts
# empty, so provision both on the "old" AMI and add their alarms (rollout.yml
# refuses to roll out without its deploy alarms). prepare_moto.py fakes what
# an account gets by hand before its first provision (certificate, secrets).
prepare=tests/ops/aws/prepare_moto.py
[ -f "$prepare" ] || die "$prepare does not exist (the AWS playbooks' moto preparation)"
# Separate stacks (every name carries the env): build them side by side.
stack() {
  local env=$1 play
  python3 "$prepare" "$env" "$work/$env-vars.json"
  for play in provision.yml monitoring.yml; do
    run_playbook "$env" "$play" -e "@$work/$env-vars.json" -e "cinemo_ami_id=$old_ami" \
      >"$work/$play-$env.log" 2>&1 \
      || { tail -n 40 "$work/$play-$env.log"; echo "error: $play failed for $env against moto" >&2; return 1; }
    echo "  $play $env: $(grep -E '^localhost +:' "$work/$play-$env.log")"
  done
}
pids=()
for env in edge stable; do stack "$env" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid" || die "building the stacks in moto failed (see above)"; done
for env in edge stable; do
  [ "$(runs_now "$env")" = "$old_ami" ] || die "$env does not run $old_ami after provision.yml"
done
step "edge and stable provisioned and monitored in moto, both on $old_ami"

# Rollout to edge, as the edge job runs it.
"$steps/rollout.sh" --env edge --ami "$ami" | tee "$work/rollout.out"
previous=$(sed -n 's/^previous_ami=//p' "$work/rollout.out" | tail -n 1)
[ "$previous" = "$old_ami" ] || die "rollout.sh recorded previous_ami=$previous, expected $old_ami"
finish_refresh edge
[ "$(runs_now edge)" = "$ami" ] || die "edge does not run $ami after the rollout"
step "edge rolled out to $ami (previous_ami=$previous recorded for the rollback)"

# A local deployment stands in for edge's load balancer: the release binary
# in --mode all, both tiers on free loopback ports, SQLite in the work dir.
public_port=$(free_port)
internal_port=$(free_port)
(
  cd "$work"
  CINEMO_CONFIG_DIR="$CINEMO_ROOT/config" \
  CINEMO__PUBLIC__LISTEN="127.0.0.1:$public_port" \
  CINEMO__INTERNAL__LISTEN="127.0.0.1:$internal_port" \
  CINEMO__PUBLIC__INTERNAL_URL="http://127.0.0.1:$internal_port" \
  CINEMO__STORAGE__URL="sqlite://$work/c.db" \
  CINEMO__OTLP__ENABLED=false \
    exec "$CINEMO_BIN" --mode all
) >"$work/cinemo.log" 2>&1 &
track_pid $!
wait_port "$public_port" 30
wait_port "$internal_port" 30
"$CINEMO_BIN" healthcheck "http://127.0.0.1:$public_port" \
  || { tail -n 40 "$work/cinemo.log"; die "the local cinemo does not answer its liveness route"; }
export CINEMO_SMOKE_URL="http://127.0.0.1:$public_port"
CINEMO_EXPECT_GIT_SHA=$CINEMO_GIT_SHA "$steps/smoke.sh"
"$steps/mark-passed.sh" --env edge --ami "$ami"
tags=$(AWS_DEFAULT_REGION=$(python3 "$steps/release_state.py" region edge) \
  python3 "$steps/release_state.py" ami-tags "$ami")
grep -q '"smoke": "passed"' <<<"$tags" || die "$ami is not tagged smoke=passed after mark-passed.sh: $tags"
step "smoke test passed against cinemo --mode all on 127.0.0.1:$public_port; $ami marked smoke=passed"

# Automatic rollback, as post-merge.yml runs it: the smoke test fails
# against a broken deployment (nothing listens on the URL), and the rollback
# step puts edge back on the AMI recorded before the rollout.
dead_port=$(free_port)
if CINEMO_SMOKE_URL="http://127.0.0.1:$dead_port" "$steps/smoke.sh" >"$work/smoke-broken.log" 2>&1; then
  cat "$work/smoke-broken.log"
  die "smoke.sh passed against a deployment that is down"
fi
grep -q "smoke test FAILED" "$work/smoke-broken.log" || { cat "$work/smoke-broken.log"; die "smoke.sh failed without its message"; }
step "smoke test fails against a broken deployment: $(grep -m1 FAILED "$work/smoke-broken.log")"
"$steps/rollback.sh" --env edge --ami "$previous"
finish_refresh edge
[ "$(runs_now edge)" = "$old_ami" ] || die "edge does not run $old_ami after rollback.sh"
step "automatic rollback put edge back on $old_ami"

# The release again (a fixed build would come through the same way), then
# promotion: end-of-soak check on edge (smoke, no alarm firing), the same
# AMI to stable, smoke again.
"$steps/rollout.sh" --env edge --ami "$ami" >"$work/rollout2.out"
finish_refresh edge
"$steps/soak-check.sh" --env edge
[ -f ansible/promote.yml ] || die "ansible/promote.yml does not exist yet: the rehearsal promotes edge's AMI to stable with it"
"$steps/promote.sh" --to stable --ami "$ami" | tee "$work/promote.out"
[ "$(sed -n 's/^previous_ami=//p' "$work/promote.out" | tail -n 1)" = "$old_ami" ] \
  || die "promote.sh did not record stable's previous AMI $old_ami"
finish_refresh stable
# stable runs promote.yml's copy of the edge AMI: same bits, its own id
stable_ami=$(runs_now stable)
AWS_DEFAULT_REGION=$(python3 "$steps/release_state.py" region stable) \
  python3 "$steps/release_state.py" ami-tags "$stable_ami" | tee "$work/stable-tags.json"
python3 - "$work/stable-tags.json" "$ami" "$CINEMO_GIT_SHA" <<'PY'
import json, sys
tags, src, sha = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
want = {"channel": "stable", "source_ami": src, "git_sha": sha}
bad = {k: (tags.get(k), v) for k, v in want.items() if tags.get(k) != v}
if bad:
    sys.exit(f"error: stable's AMI is not the promoted copy of {src} (got, want): {bad}")
PY
"$steps/smoke.sh"
step "promoted $ami to stable (copy $stable_ami, channel=stable) and smoke-tested it"

log "release suite: $passed steps in $((SECONDS - started))s"
echo "$passed passed, 0 failed"
