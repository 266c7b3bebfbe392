#!/usr/bin/env bash
# The end of edge's soak, before stable gets the build: edge still passes the
# smoke test, still runs the build that is about to be promoted, and none of
# its CloudWatch alarms (monitoring.yml) is firing.
#
#   CINEMO_SMOKE_URL=<edge url> soak-check.sh --env edge
source "$(dirname "$0")/../lib.sh"

env=edge
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: soak-check.sh [--env edge])" ;;
  esac
done
ensure_venv
"$(dirname "$0")/smoke.sh"
python3 "$(dirname "$0")/release_state.py" alarms "$env"
log "$env soaked cleanly"
