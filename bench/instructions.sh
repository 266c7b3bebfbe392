#!/usr/bin/env bash
# User-space instructions per read request in one tier, counted by
# valgrind's callgrind: repeatable to about 0.1% for the same build, where
# wrk's throughput on this shared VM swings by 10-20% between identical
# runs. For before/after comparisons of changes to one tier's own code
# (docs/performance.md); kernel time (the sockets) is not counted, and at
# the low concurrency used here HTTP/2's batching of writes does not show.
#
#   bench/instructions.sh                        # public tier, telemetry off
#   TIER=internal bench/instructions.sh
#   TELEMETRY=on bench/instructions.sh           # X-Trace on every request,
#                                                # OTLP to a discard sink and
#                                                # the Kinesis sink to a fake
#                                                # (all threads are counted)
#   TELEMETRY=otlp bench/instructions.sh         # OTLP only
#   ACCESS_LOG=on bench/instructions.sh          # the access log line of
#                                                # every request (to a file)
#   CINEMO_BIN=path/to/cinemo N=3000 bench/instructions.sh
#
# Figures, not a test. Callgrind counts a `rep movsb`/`rep stosb` as one
# instruction per byte, so large memcpy/memset weigh more here than on the
# CPU; `callgrind_annotate --inclusive=yes <file>` shows where they are.
source "$(dirname "$0")/../.ci/lib.sh"
cd "$CINEMO_ROOT"
TIER=${TIER:-public}
TELEMETRY=${TELEMETRY:-off}
ACCESS_LOG=${ACCESS_LOG:-off}
N=${N:-3000}
need_apt valgrind wrk curl

if [ -z "${CINEMO_BIN:-}" ]; then
  log "building release"
  cargo build --release --locked --bin cinemo --bin stand-ins 2>&1 | tail -n 1
fi
BIN=${CINEMO_BIN:-$CARGO_TARGET_DIR/release/cinemo}
# The stand-ins for Kinesis and the collector (bench/stand_ins.rs), built
# with cinemo; with CINEMO_BIN, the one beside it.
STAND_INS=${CINEMO_STAND_INS:-$(dirname "$BIN")/stand-ins}
[ -x "$STAND_INS" ] || die "no $STAND_INS: cargo build --release --bin stand-ins, or set CINEMO_STAND_INS"

work=$(mktemp -d)
cleanup_work() { _ci_cleanup; rm -rf "$work"; }
trap cleanup_work EXIT

tele=(CINEMO__OTLP__ENABLED=false)
if [ "$TELEMETRY" != off ]; then
  po=$(free_port)
  "$STAND_INS" otlp "$po" >/dev/null 2>&1 &
  track_pid $!
  wait_port "$po"
  # One metrics export a second, so export work shows in the count.
  tele=(CINEMO__OTLP__ENABLED=true CINEMO__OTLP__ENDPOINT="http://127.0.0.1:$po" CINEMO__OTLP__EXPORT_INTERVAL_MS=1000)
fi
if [ "$TELEMETRY" = on ]; then
  pk=$(free_port)
  "$STAND_INS" kinesis "$pk" >/dev/null 2>&1 &
  track_pid $!
  wait_port "$pk"
  tele+=(CINEMO__KINESIS__STREAM_NAME=cinemo-diagnostics CINEMO__KINESIS__REGION=us-east-1
    CINEMO__KINESIS__ENDPOINT="http://127.0.0.1:$pk" AWS_ACCESS_KEY_ID=testing
    AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true)
fi

logs=(CINEMO__LOG__LEVEL=warn CINEMO__LOG__ACCESS=false)
[ "$ACCESS_LOG" = on ] && logs=(CINEMO__LOG__LEVEL=warn,cinemo::access=info CINEMO__LOG__ACCESS=true)
common=(CINEMO_CONFIG_DIR="$work" "${logs[@]}" CINEMO__HTTP__WORKERS=1 "${tele[@]}")
out="$work/callgrind.out"
vg=(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no -q)
pi=$(free_port); pp=$(free_port)
internal_cmd=("$BIN" --mode internal); public_cmd=("$BIN" --mode public)
case "$TIER" in
  internal) internal_cmd=("${vg[@]}" "${internal_cmd[@]}") ;;
  public) public_cmd=("${vg[@]}" "${public_cmd[@]}") ;;
  *) die "TIER must be public or internal" ;;
esac
env "${common[@]}" CINEMO__INTERNAL__LISTEN="127.0.0.1:$pi" CINEMO__STORAGE__URL="sqlite://$work/i.db" \
  "${internal_cmd[@]}" >"$work/internal.log" 2>&1 &
internal_pid=$!; track_pid $internal_pid
env "${common[@]}" CINEMO__PUBLIC__LISTEN="127.0.0.1:$pp" CINEMO__PUBLIC__INTERNAL_URL="http://127.0.0.1:$pi" \
  "${public_cmd[@]}" >"$work/public.log" 2>&1 &
public_pid=$!; track_pid $public_pid
wait_port "$pi" 120; wait_port "$pp" 120
for _ in $(seq 600); do curl -fs "http://127.0.0.1:$pp/api/health" >/dev/null && break; sleep 0.1; done
id=$(curl -fsS -X POST -H 'content-type: application/json' -d '{"name":"Bench Customer"}' \
  "http://127.0.0.1:$pp/api/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customerId"])')
url="http://127.0.0.1:$pp/api/customers/$id"
cat >"$work/n.lua" <<LUA
local n = 0
request = function() n = n + 1; if n > $N then wrk.thread:stop() end; return wrk.format() end
LUA

target=$([ "$TIER" = internal ] && echo $internal_pid || echo $public_pid)
# Warm up (connections, caches, lazily bound instruments), then count.
wrk -t1 -c4 -d3s -H 'X-Trace: bench-trace-token' "$url" >/dev/null
sleep 1.2
callgrind_control -z "$target" >/dev/null
done_n=$(wrk -t1 -c4 -d120s -H 'X-Trace: bench-trace-token' -s "$work/n.lua" "$url" | awk '/requests in/ {print $1}')
sleep 1.2 # one metrics export
callgrind_control -d "$target" >/dev/null
sleep 0.5
file=$(ls -t "$out"* | head -n 1)
ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
[ -n "$ir" ] && [ "${done_n:-0}" -gt 0 ] || die "no count (see $work)"
keep="${CINEMO_CACHE}/logs/instructions-$TIER-$TELEMETRY-access-$ACCESS_LOG.callgrind"
cp "$file" "$keep"
echo "$("$BIN" --version): $TIER tier, telemetry $TELEMETRY, access log $ACCESS_LOG: $done_n reads, $((ir / done_n)) instructions per read (callgrind file: $keep)"
