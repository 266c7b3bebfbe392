#!/usr/bin/env bash
# Record on the AMI that it passed the smoke test on edge: the tag
# smoke=passed that ansible/promote.yml demands before it copies an AMI to
# stable ("never promote an untested AMI"). Run right after smoke.sh passed.
#
#   mark-passed.sh --ami ami-0123... [--env edge]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_ansible.sh"

env=edge ami=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env=$2; shift 2 ;;
    --ami) ami=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: mark-passed.sh --ami AMI [--env edge])" ;;
  esac
done
[ -n "$ami" ] || die "--ami is required (the AMI that just passed the smoke test)"
run_playbook "$env" promote.yml -e "ami=$ami" -e promote_mark_smoke_passed=true
log "$ami marked smoke=passed on $env"
