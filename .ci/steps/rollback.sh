#!/usr/bin/env bash
# Put an environment back on the AMI it ran before the last rollout or
# promotion: the automatic rollback after a failed smoke test, and the
# by-hand rollback (docs/releasing.md).
#
#   rollback.sh --env edge [--ami ami-0123...]
#
# Without --ami it uses what rollout.sh/promote.sh recorded on this machine
# ($CINEMO_CACHE/release-state/ENV.previous-ami). A rollback is a rollout of
# the old image through the same playbook, so it gets the same health-gated
# instance refresh.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_ansible.sh"

env="" ami=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env=$2; shift 2 ;;
    --ami) ami=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: rollback.sh --env ENV [--ami AMI])" ;;
  esac
done
[ -n "$env" ] || die "--env is required"
if [ -z "$ami" ] && [ -f "$(state_dir)/$env.previous-ami" ]; then
  ami=$(cat "$(state_dir)/$env.previous-ami")
fi
[ -n "$ami" ] || die "nothing to roll $env back to: no --ami and no recorded previous AMI (a first rollout into a fresh stack has no predecessor)"

log "ROLLBACK: $env back to $ami"
run_playbook "$env" rollout.yml -e "ami=$ami" -e "rollout_reason=rollback"
echo "$ami" >"$(state_dir)/$env.current-ami"
gh_output ami "$ami"
log "$env rolled back to $ami"
