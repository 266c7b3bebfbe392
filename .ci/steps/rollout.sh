#!/usr/bin/env bash
# Roll an AMI out to one environment (ansible/rollout.yml), remembering what
# ran there before so a failed smoke test can roll back to it.
#
#   rollout.sh --env edge --ami ami-0123...   (or --manifest packer-manifest.json)
#
# Outputs (GITHUB_OUTPUT in Actions, stdout here): previous_ami, ami.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_ansible.sh"

env="" ami="" manifest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env=$2; shift 2 ;;
    --ami) ami=$2; shift 2 ;;
    --manifest) manifest=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: rollout.sh --env ENV --ami AMI|--manifest FILE)" ;;
  esac
done
[ -n "$env" ] || die "--env is required"
ensure_venv
if [ -z "$ami" ] && [ -n "$manifest" ]; then
  ami=$(python3 "$(dirname "$0")/release_state.py" manifest-ami "$manifest")
fi
[ -n "$ami" ] || die "--ami or --manifest is required"

# What runs now is what a rollback goes back to. A first rollout into a fresh
# stack has nothing to go back to: the rollback step then has nothing to do.
previous=$(python3 "$(dirname "$0")/release_state.py" current-ami "$env" 2>/dev/null || true)
echo "${previous:-}" >"$(state_dir)/$env.previous-ami"
gh_output previous_ami "${previous:-}"
gh_output ami "$ami"
if [ "$previous" = "$ami" ]; then
  log "$env already runs $ami; rolling out anyway (idempotent)"
fi

run_playbook "$env" rollout.yml -e "ami=$ami"
echo "$ami" >"$(state_dir)/$env.current-ami"
log "$env rolled out to $ami (previous: ${previous:-none})"
