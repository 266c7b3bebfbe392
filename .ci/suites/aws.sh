#!/usr/bin/env bash
# The AWS stack suite: every Ansible playbook is syntax-checked and linted;
# provision.yml, monitoring.yml and verify.yml run for real against a moto
# server on 127.0.0.1 for dev and edge; pytest reads the stack back through
# the AWS API; a second provision run must change nothing.
#   .ci/suites/aws.sh            (CINEMO_AWS_ENVS="dev edge" by default)
source "$(dirname "$0")/../lib.sh"

t0=$SECONDS
envs=${CINEMO_AWS_ENVS:-dev edge}
export CINEMO_AWS_ENVS=$envs
ensure_venv
ensure_ansible_collections
for tool in ansible-playbook ansible-lint pytest moto_server; do
  command -v "$tool" >/dev/null || die "$tool missing from the venv"
done
for c in amazon/aws community/aws community/general; do
  [ -d "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/$c" ] || die "collection $c missing"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-aws.XXXXXX")
trap '_ci_cleanup; rm -rf "$work"' EXIT
export ANSIBLE_CONFIG="$CINEMO_ROOT/ansible/ansible.cfg"
export ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_HOME="$work/ansible-home"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
cd "$CINEMO_ROOT/ansible"

# Top-level playbooks; host.yml and its roles are linted by .ci/suites/host.sh.
playbooks=()
for f in *.yml; do
  [ "$f" = host.yml ] && continue
  playbooks+=("$f")
done
((${#playbooks[@]})) || die "no playbooks under ansible/"

# ---- 1. syntax ---------------------------------------------------------------
log "ansible-playbook --syntax-check: ${playbooks[*]}"
for pb in "${playbooks[@]}"; do
  ansible-playbook -i inventories/dev --syntax-check "$pb" -e env=dev >"$work/syntax.log" 2>&1 \
    || { cat "$work/syntax.log"; die "syntax check failed: $pb"; }
done

# ---- 2. lint -------------------------------------------------------------------
log "ansible-lint --offline --profile production"
roles=()
for r in roles/*/; do
  case "$r" in roles/cinemo_host/|roles/otel_collector/) continue ;; esac
  roles+=("${r%/}")
done
(cd "$CINEMO_ROOT" && ansible-lint --offline --profile production \
  "${playbooks[@]/#/ansible/}" "${roles[@]/#/ansible/}" ansible/inventories 2>&1 | tail -n 40; exit "${PIPESTATUS[0]}") \
  || die "ansible-lint failed"

# ---- 3. against moto ------------------------------------------------------------
start_moto
log "moto on $AWS_ENDPOINT_URL"

# play NAME ENV PLAYBOOK: run a playbook for an env, keep its log.
play() {
  local name=$1 env=$2 pb=$3
  ansible-playbook -i "inventories/$env" "$pb" -e "env=$env" -e "@$work/$env-vars.json" \
    >"$work/$name.log" 2>&1 || { tail -n 60 "$work/$name.log"; die "$pb failed for $env (see above)"; }
  grep -E '^localhost +:' "$work/$name.log" | sed "s/^/  $name: /" >&2
}

for env in $envs; do
  python3 "$CINEMO_ROOT/tests/ops/aws/prepare_moto.py" "$env" "$work/$env-vars.json"
done
# Environments are separate stacks in separate regions: build them side by side.
pids=()
for env in $envs; do
  (
    log "provision.yml -e env=$env"
    play "provision-$env" "$env" provision.yml
    if [ -f monitoring.yml ]; then
      log "monitoring.yml -e env=$env"
      play "monitoring-$env" "$env" monitoring.yml
    fi
    log "verify.yml -e env=$env"
    play "verify-$env" "$env" verify.yml
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a play failed"; done

# ---- 4. read the stack back ---------------------------------------------------------
log "pytest tests/ops/aws"
tests=("$CINEMO_ROOT/tests/ops/aws")
[ -d "$CINEMO_ROOT/tests/ops/rollout" ] && tests+=("$CINEMO_ROOT/tests/ops/rollout")
(cd "$CINEMO_ROOT" && python3 -m pytest -q -p no:cacheprovider "${tests[@]}") || die "pytest failed"

# ---- 5. a second run changes nothing ----------------------------------------------------
pids=()
for env in $envs; do
  (
    log "provision.yml -e env=$env (second run)"
    play "provision2-$env" "$env" provision.yml
    grep -qE '^localhost +: ok=[0-9]+ +changed=0 ' "$work/provision2-$env.log" || {
      grep -B2 -E '^changed:' "$work/provision2-$env.log" | head -n 40
      die "second provision run for $env changed something"
    }
    if [ -f monitoring.yml ]; then
      play "monitoring2-$env" "$env" monitoring.yml
      grep -qE '^localhost +: ok=[0-9]+ +changed=0 ' "$work/monitoring2-$env.log" || {
        grep -B2 -E '^changed:' "$work/monitoring2-$env.log" | head -n 40
        die "second monitoring run for $env changed something"
      }
    fi
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a second run was not clean"; done

log "aws suite passed in $((SECONDS - t0))s"
