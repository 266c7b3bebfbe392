#!/usr/bin/env bash
# Run one suite from .ci/suites/ by file name (the pre-merge matrix's entry).
# Suites that install the binary (host.sh) read CINEMO_BIN; when it is not
# set, the release binary is built first, as .ci/run would.
source "$(dirname "$0")/../lib.sh"
name=${1:?usage: run-suite.sh NAME.sh}
case "$name" in */* | .* | *[!A-Za-z0-9._-]*) die "bad suite name: $name" ;; esac
suite="$CINEMO_ROOT/.ci/suites/$name"
[ -f "$suite" ] || die "no suite $suite"
if [ -z "${CINEMO_BIN:-}" ] && [ "$name" != release.sh ]; then
  log "building the release binary for the suite (CINEMO_BIN unset)"
  (cd "$CINEMO_ROOT" && cargo build --release --locked --bin cinemo)
  export CINEMO_BIN="$CARGO_TARGET_DIR/release/cinemo"
fi
trap - EXIT
exec bash "$suite"
