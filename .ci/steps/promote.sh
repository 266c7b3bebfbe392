#!/usr/bin/env bash
# Promote the AMI that passed edge's smoke test to stable (ansible/promote.yml).
# Stable gets exactly the tested image, never a rebuild and never "whatever
# edge runs now": the AMI id is passed through from the edge job. promote.yml
# refuses an AMI without the smoke=passed tag (mark-passed.sh), copies it
# (same bits, its own id, channel=stable, source_ami=<edge AMI>) and rolls
# the copy out to stable like rollout.yml.
#
#   promote.sh --ami ami-0123... [--to stable]
#
# Outputs: previous_ami (what stable ran before), ami.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_ansible.sh"

to=stable ami=""
while [ $# -gt 0 ]; do
  case "$1" in
    --to) to=$2; shift 2 ;;
    --ami) ami=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: promote.sh --ami AMI [--to stable])" ;;
  esac
done
[ -n "$ami" ] || die "--ami is required (the AMI that passed on edge)"
ensure_venv

previous=$(python3 "$(dirname "$0")/release_state.py" current-ami "$to" 2>/dev/null || true)
echo "${previous:-}" >"$(state_dir)/$to.previous-ami"
gh_output previous_ami "${previous:-}"
gh_output ami "$ami"

run_playbook "$to" promote.yml -e "ami=$ami"
echo "$ami" >"$(state_dir)/$to.current-ami"
log "$to promoted to $ami (previous: ${previous:-none})"
