#!/usr/bin/env bash
# Fault drills: the production shape on loopback (HAProxy as the ALB and
# the internal NLB, two hosts per tier, PostgreSQL, kinesalite), a steady
# mixed load, and rollouts, crashes, database and Kinesis outages and idle
# and slow clients under it, counted as a customer sees them
# (docs/reliability.md).
#
#   tests/drills/run.sh            # production timings, ~12 minutes; prints the table
#   tests/drills/run.sh --short    # scaled down for CI, ~2 minutes; exits 1 on a missed goal
#   tests/drills/run.sh --only 1,4 # some drills only (7, the read-back, always runs)
#
# Uses CINEMO_BIN when set, else builds the release binary. Every server
# binds 127.0.0.1 on a free port and is stopped when the run ends.
source "$(dirname "$0")/../../.ci/lib.sh"
cd "$CINEMO_ROOT"

profile=full
args=()
while (($#)); do
  case "$1" in
    --short) profile=short ;;
    *) args+=("$1") ;;
  esac
  shift
done

need_apt haproxy openssl
ensure_postgres
ensure_node_tools
command -v node >/dev/null || die "node is not installed (kinesalite runs on it)"

if [ -z "${CINEMO_BIN:-}" ]; then
  log "building release"
  cargo build --release --locked --bin cinemo 2>&1 | tail -n 1
  CINEMO_BIN="$CARGO_TARGET_DIR/release/cinemo"
fi
[ -x "$CINEMO_BIN" ] || die "CINEMO_BIN=$CINEMO_BIN is not an executable file"
log "drills ($profile) with $("$CINEMO_BIN" --version)"

exec python3 tests/drills/drills.py --profile "$profile" --binary "$CINEMO_BIN" \
  --pg-bin "$CINEMO_PG_BIN" --node-modules "$CINEMO_NODE_MODULES" "${args[@]}"
