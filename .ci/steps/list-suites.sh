#!/usr/bin/env bash
# The suites under .ci/suites/ as a JSON list (for the pre-merge matrix):
# a new suite runs in GitHub as soon as it exists, with no workflow edit.
set -euo pipefail
cd "$(dirname "$0")/../suites"
names=$(ls -1 -- *.sh 2>/dev/null | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')
[ "$names" != "[]" ] || { echo "error: no suites under .ci/suites" >&2; exit 1; }
echo "names=$names"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "names=$names" >>"$GITHUB_OUTPUT"; fi
