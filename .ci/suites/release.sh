#!/usr/bin/env bash
# The release suite (issue 8): every step of the post-merge workflow that can
# run on CI's own machine, with the same scripts, in the same order.
#
#   1. workflow validation     .ci/steps/validate-workflows.sh (action-validator)
#   2. supply chain            .ci/steps/deny.sh (offline RustSec snapshot)
#   3. release build           .ci/steps/release-build.sh: x86_64 only here (no
#                              aarch64 standard library), checksum and SBOM printed
#   4. pipeline rehearsal, against moto on loopback:
#        provision edge and stable   ansible/provision.yml (the stack to roll into)
#        bake                        .ci/steps/bake.sh (Packer 1.6.6, communicator none)
#        rollout to edge             .ci/steps/rollout.sh -> ansible/rollout.yml
#        smoke                       .ci/steps/smoke.sh against a local `cinemo --mode all`
#        automatic rollback          smoke against a broken deployment must fail,
#                                    then .ci/steps/rollback.sh restores edge
#        promotion to stable         .ci/steps/soak-check.sh, .ci/steps/promote.sh
#                                    -> ansible/promote.yml, smoke again
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
for play in provision.yml rollout.yml promote.yml; do
  [ -f "ansible/$play" ] || die "ansible/$play does not exist yet: the rehearsal rolls out with it"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-release.XXXXXX")
trap 'rm -rf "$work"; _ci_cleanup' EXIT
export CINEMO_RELEASE_STATE="$work/state"

start_moto
echo "moto on $AWS_ENDPOINT_URL"
source "$steps/_ansible.sh"

# The stacks the release rolls into. In AWS they exist already; here moto
# starts empty, so provision both (the playbooks' own suite tests them).
for env in edge stable; do
  run_playbook "$env" provision.yml >"$work/provision-$env.log" 2>&1 \
    || { tail -n 40 "$work/provision-$env.log"; die "provision.yml failed for $env against moto"; }
done
step "edge and stable provisioned in moto"

"$steps/bake.sh" --channel edge --env edge --dist "$CINEMO_DIST" | tee "$work/bake.out"
ami=$(sed -n 's/^ami=//p' "$work/bake.out" | tail -n 1)
[ -n "$ami" ] || die "bake.sh reported no AMI"
step "baked $ami (channel=edge, version $CINEMO_VERSION, git sha $CINEMO_GIT_SHA)"

"$steps/rollout.sh" --env edge --ami "$ami" | tee "$work/rollout.out"
previous=$(sed -n 's/^previous_ami=//p' "$work/rollout.out" | tail -n 1)
now=$(python3 "$steps/release_state.py" current-ami edge)
[ "$now" = "$ami" ] || die "after rollout.yml edge runs $now, not $ami"
step "edge rolled out to $ami (was ${previous:-nothing})"

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
step "smoke test passed against cinemo --mode all on 127.0.0.1:$public_port"

# Automatic rollback, as post-merge.yml runs it: the smoke test must fail
# against a broken deployment (nothing listens), and the rollback step then
# puts edge back on what it ran before this release.
dead_port=$(free_port)
if CINEMO_SMOKE_URL="http://127.0.0.1:$dead_port" "$steps/smoke.sh" >"$work/smoke-broken.log" 2>&1; then
  cat "$work/smoke-broken.log"
  die "smoke.sh passed against a deployment that is down"
fi
grep -q "smoke test FAILED" "$work/smoke-broken.log" || { cat "$work/smoke-broken.log"; die "smoke.sh failed without its message"; }
step "smoke test fails against a broken deployment: $(grep -m1 FAILED "$work/smoke-broken.log")"
if [ -n "$previous" ]; then
  back_to=$previous
else
  # A fresh stack has no earlier release: rehearse the rollback onto a
  # second bake of the same binaries (another AMI id), then return.
  "$steps/bake.sh" --channel edge --env edge --dist "$CINEMO_DIST" >"$work/bake2.out"
  back_to=$(sed -n 's/^ami=//p' "$work/bake2.out" | tail -n 1)
  "$steps/rollout.sh" --env edge --ami "$back_to" >/dev/null
  "$steps/rollout.sh" --env edge --ami "$ami" >/dev/null
fi
"$steps/rollback.sh" --env edge
now=$(python3 "$steps/release_state.py" current-ami edge)
[ "$now" = "$back_to" ] || die "after rollback.sh edge runs $now, not $back_to"
step "automatic rollback put edge back on $back_to"
"$steps/rollout.sh" --env edge --ami "$ami" >/dev/null

# Promotion: soak check on edge (smoke + no alarm firing), then the same AMI
# to stable, smoke again.
"$steps/soak-check.sh" --env edge
"$steps/promote.sh" --to stable --ami "$ami" | tee "$work/promote.out"
now=$(python3 "$steps/release_state.py" current-ami stable)
[ "$now" = "$ami" ] || die "after promote.yml stable runs $now, not $ami"
AWS_DEFAULT_REGION=$(python3 "$steps/release_state.py" region stable) \
  python3 "$steps/release_state.py" ami-tags "$ami"
"$steps/smoke.sh"
step "promoted $ami to stable and smoke-tested it"

log "release suite: $passed steps in $((SECONDS - started))s"
echo "$passed passed, 0 failed"
