# shellcheck shell=bash
# Running the ops playbooks from the release steps. Sourced after ../lib.sh.

# run_playbook ENV PLAYBOOK [ansible-playbook args...]: ansible/PLAYBOOK with
# ENV's inventory, from ansible/ (its ansible.cfg). With AWS_ENDPOINT_URL set
# (moto in CI) every AWS task is pointed at it through aws_endpoint_url, the
# variable every play honours (docs/interfaces.md, Ops entry points).
run_playbook() {
  local env=$1 play=$2; shift 2
  [ -f "$CINEMO_ROOT/ansible/$play" ] || die "ansible/$play does not exist yet (owned by the ops playbooks)"
  [ -d "$CINEMO_ROOT/ansible/inventories/$env" ] || die "no inventory ansible/inventories/$env"
  ensure_venv
  ensure_ansible_collections
  local extra=()
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then extra+=(-e "aws_endpoint_url=$AWS_ENDPOINT_URL"); fi
  # ansible's own scratch space stays in the cache, not in the home directory
  mkdir -p "$CINEMO_CACHE/ansible-home/tmp"
  log "ansible-playbook $play (env=$env) $*"
  (cd "$CINEMO_ROOT/ansible" &&
    ANSIBLE_CONFIG="$CINEMO_ROOT/ansible/ansible.cfg" \
    ANSIBLE_HOME="$CINEMO_CACHE/ansible-home" ANSIBLE_LOCAL_TEMP="$CINEMO_CACHE/ansible-home/tmp" \
    ANSIBLE_NOCOLOR=1 ANSIBLE_DISPLAY_SKIPPED_HOSTS=false \
    ansible-playbook -i "inventories/$env" "$play" -e "env=$env" "${extra[@]}" "$@")
}

# gh_output KEY VALUE: a step output in GitHub Actions, a line on stdout here.
gh_output() {
  echo "$1=$2"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1=$2" >>"$GITHUB_OUTPUT"; fi
}

# state_dir: where a run remembers what it replaced (for rollback.sh when no
# --ami is given). One file per environment; in GitHub the step outputs carry it.
state_dir() {
  local d="${CINEMO_RELEASE_STATE:-$CINEMO_CACHE/release-state}"
  mkdir -p "$d"; echo "$d"
}
