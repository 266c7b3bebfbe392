#!/usr/bin/env bash
# The AWS stack suite: every Ansible playbook is syntax-checked and linted;
# provision.yml, monitoring.yml and verify.yml run for real against a moto
# server on 127.0.0.1 for dev and edge; pytest reads the stack back through
# the AWS API; a second provision + monitoring run must change nothing;
# destroy.yml then tears each stack down and pytest checks nothing is left.
#   .ci/suites/aws.sh            (CINEMO_AWS_ENVS="dev edge" by default)
#
# What does not depend on the stack runs beside it: the rollout and stack role
# tests (each their own moto) and ansible-lint start first; each environment then goes
# provision -> monitoring -> (verify, pytest tests/ops/aws, second run) ->
# destroy -> pytest tests/ops/destroy on its own, side by side with the other.
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
# moto implements neither PutCompositeAlarm nor instance refreshes: the roles'
# CI switches (each play says loudly what it did not do). Never set for AWS.
export CINEMO_SKIP_COMPOSITE_ALARM=1 CINEMO_SKIP_INSTANCE_REFRESH=1
cd "$CINEMO_ROOT/ansible"

# Top-level playbooks; host.yml and its roles are linted by .ci/suites/host.sh.
playbooks=()
for f in *.yml; do
  [ "$f" = host.yml ] && continue
  playbooks+=("$f")
done
((${#playbooks[@]})) || die "no playbooks under ansible/"

# ---- 0. the rollout tests: their own moto, independent of the stack -----------
# bg NAME CMD...: run CMD in the background, output in $work/NAME.log.
bg_pids=() bg_names=()
bg() {
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  bg_pids+=($!) bg_names+=("$name")
}
# wait_bg: wait for every background step; print the log of those that failed.
wait_bg() {
  local i failed=()
  for i in "${!bg_pids[@]}"; do
    wait "${bg_pids[$i]}" || failed+=("${bg_names[$i]}")
  done
  bg_pids=() bg_names=()
  for i in "${failed[@]}"; do
    [ -f "$work/$i.log" ] || continue
    printf '\n---- %s ----\n' "$i" >&2; tail -n 80 "$work/$i.log" >&2
  done
  ((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
}

log "pytest tests/ops/rollout and tests/ops/stack (in the background, each its own moto)"
bg pytest-rollout bash -c 'cd "$CINEMO_ROOT" && python3 -m pytest -q -p no:cacheprovider tests/ops/rollout'
bg pytest-stack bash -c 'cd "$CINEMO_ROOT" && python3 -m pytest -q -p no:cacheprovider tests/ops/stack'

# ---- 1. syntax -----------------------------------------------------------------
log "ansible-playbook --syntax-check: ${playbooks[*]}"
ansible-playbook -i inventories/dev --syntax-check "${playbooks[@]}" -e env=dev >"$work/syntax.log" 2>&1 \
  || { cat "$work/syntax.log"; die "syntax check failed"; }

# ---- 2. lint (in the background) ------------------------------------------------
log "ansible-lint --offline --profile production (in the background)"
roles=()
for r in roles/*/; do
  case "$r" in roles/cinemo_host/|roles/otel_collector/) continue ;; esac
  roles+=("${r%/}")
done
bg lint bash -c 'cd "$CINEMO_ROOT" && ansible-lint --offline --profile production "$@"' lint \
  "${playbooks[@]/#/ansible/}" "${roles[@]/#/ansible/}" ansible/inventories

# ---- 3. against moto --------------------------------------------------------------
start_moto
log "moto on $AWS_ENDPOINT_URL"

# play NAME ENV PLAYBOOK [ARGS...]: run a playbook for an env, keep its log.
play() {
  local name=$1 env=$2 pb=$3 t=$SECONDS
  shift 3
  ansible-playbook -i "inventories/$env" "$pb" -e "env=$env" -e "@$work/$env-vars.json" "$@" \
    >"$work/$name.log" 2>&1 || { tail -n 60 "$work/$name.log" >&2; die "$pb failed for $env (see above)"; }
  grep -E '^localhost +:' "$work/$name.log" | sed "s/^/  $name ($((SECONDS - t))s): /" >&2
}

# unchanged NAME: the PLAY RECAP of $work/NAME.log says changed=0 (and nothing failed).
unchanged() {
  local recap
  recap=$(grep -E '^localhost +:' "$work/$1.log") || die "$1: no PLAY RECAP"
  if [[ $recap =~ changed=([0-9]+) ]] && ((BASH_REMATCH[1] == 0)) && [[ $recap =~ failed=0 ]]; then
    return 0
  fi
  grep -B3 -E '^changed:' "$work/$1.log" | head -n 60 >&2
  die "$1: a second run changed something: $recap"
}

# stack ENV: build one environment, then check it three ways at once.
stack() {
  local env=$1
  python3 "$CINEMO_ROOT/tests/ops/aws/prepare_moto.py" "$env" "$work/$env-vars.json"
  play "provision-$env" "$env" provision.yml
  play "monitoring-$env" "$env" monitoring.yml
  # Read-only checks and the second run, side by side: verify and pytest
  # only read, and the second run must not write (it is asserted below).
  local p1 p2 rc=0
  play "verify-$env" "$env" verify.yml &
  p1=$!
  (cd "$CINEMO_ROOT" && CINEMO_AWS_ENVS=$env python3 -m pytest -q -p no:cacheprovider tests/ops/aws) \
    >"$work/pytest-aws-$env.log" 2>&1 &
  p2=$!
  play "provision2-$env" "$env" provision.yml || rc=1
  unchanged "provision2-$env"
  play "monitoring2-$env" "$env" monitoring.yml || rc=1
  unchanged "monitoring2-$env"
  wait "$p1" || rc=1
  if wait "$p2"; then
    tail -n 1 "$work/pytest-aws-$env.log" | sed "s/^/  pytest tests\/ops\/aws ($env): /" >&2
  else
    tail -n 80 "$work/pytest-aws-$env.log" >&2; rc=1
  fi
  ((rc == 0)) || return "$rc"
  # Then tear it down and check that nothing of it is left.
  play "destroy-$env" "$env" destroy.yml -e "destroy_confirm=$env" || return 1
  if (cd "$CINEMO_ROOT" && CINEMO_AWS_ENVS=$env python3 -m pytest -q -p no:cacheprovider tests/ops/destroy) \
    >"$work/pytest-destroy-$env.log" 2>&1; then
    tail -n 1 "$work/pytest-destroy-$env.log" | sed "s/^/  pytest tests\/ops\/destroy ($env): /" >&2
  else
    tail -n 80 "$work/pytest-destroy-$env.log" >&2; return 1
  fi
}

# Environments are separate stacks in separate regions: build them side by side.
for env in $envs; do
  log "$env: provision.yml, monitoring.yml; then verify.yml, pytest tests/ops/aws and a second run"
  stack "$env" &
  bg_pids+=($!) bg_names+=("stack-$env")
done
wait_bg

# The record: every recap, the pytest summaries, lint's verdict.
log "summary"
for env in $envs; do
  for step in provision monitoring verify provision2 monitoring2 destroy; do
    grep -E '^localhost +:' "$work/$step-$env.log" | sed -E "s/^localhost +:/  $step-$env:/; s/ +(unreachable|rescued|ignored)=0//g" >&2
  done
  tail -n 1 "$work/pytest-aws-$env.log" | sed "s/^/  pytest tests\/ops\/aws ($env): /" >&2
  tail -n 1 "$work/pytest-destroy-$env.log" | sed "s/^/  pytest tests\/ops\/destroy ($env): /" >&2
done
for t in rollout stack; do
  tail -n 1 "$work/pytest-$t.log" | sed "s/^/  pytest tests\/ops\/$t: /" >&2
done
grep -E 'Passed|Failed' "$work/lint.log" | tail -n 1 | sed 's/^/  ansible-lint: /' >&2 || true

log "aws suite passed in $((SECONDS - t0))s"
