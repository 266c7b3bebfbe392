#!/usr/bin/env bash
# Run one suite from .ci/suites/ by file name (the pre-merge matrix's entry).
set -euo pipefail
name=${1:?usage: run-suite.sh NAME.sh}
case "$name" in */* | .* | *[!A-Za-z0-9._-]*) echo "error: bad suite name: $name" >&2; exit 1 ;; esac
suite="$(dirname "$0")/../suites/$name"
[ -f "$suite" ] || { echo "error: no suite $suite" >&2; exit 1; }
exec bash "$suite"
