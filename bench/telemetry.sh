#!/usr/bin/env bash
# The cost of telemetry (issue 4): throughput and p99 of the read path with
# `X-Trace` on every request, the Kinesis sink writing to kinesalite and
# OTLP export on (to a sink that accepts everything), as a ratio of the same
# run with telemetry off. Target: ratio >= 0.9.
#
#   bench/telemetry.sh                   # 20 s per run, release build
#   BENCH_SECONDS=5 bench/telemetry.sh
#   BENCH_KINESIS=kinesalite|off bench/telemetry.sh   # see below
#   ROUNDS=3 (default): off and on alternate; medians are compared
#   CINEMO_BIN=path/to/cinemo bench/telemetry.sh   # skip the build
#   BENCH_PACED_RATE=5000 (default): the paced load's rate, see below
#
# Figures, not a test: it fails only when it cannot measure. It also prints
# the Kinesis sink's own counts (sent / retried / dropped): with a local
# kinesalite on the same cores, drops under full load are expected and are
# exactly what the sink is designed to do instead of slowing requests.
source "$(dirname "$0")/../.ci/lib.sh"
cd "$CINEMO_ROOT"
S=${BENCH_SECONDS:-20}
need_apt wrk curl
ensure_node_tools

if [ -z "${CINEMO_BIN:-}" ]; then
  log "building release"
  cargo build --release --locked --bin cinemo 2>&1 | tail -n 1
fi
BIN=${CINEMO_BIN:-$CARGO_TARGET_DIR/release/cinemo}

work=$(mktemp -d)
cleanup_work() { _ci_cleanup; rm -rf "$work"; }
trap cleanup_work EXIT

# The Kinesis endpoint. In production it is a remote AWS service; here it
# shares the 2 cores with the servers and the load generator, so whatever
# it burns is taken from cinemo's figure. BENCH_KINESIS picks it:
#   fake (default): a minimal PutRecords endpoint that counts and discards
#     records, answering like Kinesis (the target's figure);
#   kinesalite: the full local implementation the tests use (Node.js,
#     validates and stores every record: much heavier than the servers);
#   off: no Kinesis sink, OpenTelemetry export alone.
KINESIS=${BENCH_KINESIS:-fake}
pk=$(free_port)
case "$KINESIS" in
  kinesalite)
    node -e "require('$CINEMO_NODE_MODULES/kinesalite')({createStreamMs: 50}).listen($pk, '127.0.0.1')" >"$work/kinesalite.log" 2>&1 &
    track_pid $!
    wait_port "$pk"
    kinesis() { # kinesis ACTION JSON
      curl -fsS -X POST "http://127.0.0.1:$pk/" -H 'Content-Type: application/x-amz-json-1.1' \
        -H "X-Amz-Target: Kinesis_20131202.$1" -H 'X-Amz-Date: 20260101T000000Z' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00' \
        -d "$2"
    }
    kinesis CreateStream '{"StreamName":"cinemo-diagnostics","ShardCount":4}' >/dev/null
    for _ in $(seq 50); do
      kinesis DescribeStreamSummary '{"StreamName":"cinemo-diagnostics"}' | grep -q '"ACTIVE"' && break
      sleep 0.1
    done
    ;;
  fake)
    python3 bench/stand_ins.py kinesis "$pk" "$work/fake-kinesis.count" >"$work/fake-kinesis.log" 2>&1 &
    track_pid $!
    wait_port "$pk"
    ;;
  off) ;;
  *) die "BENCH_KINESIS must be fake, kinesalite or off" ;;
esac

# An OTLP/HTTP sink that accepts and discards everything.
po=$(free_port)
python3 bench/stand_ins.py otlp "$po" >"$work/otlp.log" 2>&1 &
track_pid $!
wait_port "$po"

common_env=(CINEMO_CONFIG_DIR="$work" CINEMO__LOG__LEVEL=warn CINEMO__HTTP__WORKERS=2
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true)
off_env=(CINEMO__OTLP__ENABLED=false)
on_env=(CINEMO__OTLP__ENABLED=true CINEMO__OTLP__ENDPOINT="http://127.0.0.1:$po"
  CINEMO__KINESIS__STREAM_NAME=cinemo-diagnostics CINEMO__KINESIS__REGION=us-east-1
  CINEMO__KINESIS__ENDPOINT="http://127.0.0.1:$pk")
if [ "$KINESIS" = off ]; then on_env=("${on_env[@]:0:2}"); fi

# CPU time (user + system, clock ticks) the given processes have used.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}

# Two loads per run. At saturation (wrk -c64, no pause) the throughput is
# the figure; its latency is the queue of 64 connections, so its p99 moves
# with the throughput and adds little to it. A paced load below saturation
# (BENCH_PACED_RATE req/s, Poisson arrivals, as in bench/run.sh) gives the
# latency telemetry adds to a request when the host has headroom, which is
# what a caller sees in normal operation.
PACED_RATE=${BENCH_PACED_RATE:-5000}
paced_wrk_script "$work/paced.lua"
paced_conns=$(paced_connections "$PACED_RATE")

# run NAME on|off: starts both tiers, measures the read path, stops them.
# Prints "rps p99_ms non2xx cpu_us_per_request paced_rps paced_p99_ms" (the
# CPU both cinemo processes spent per request at saturation: cinemo's own
# cost, whatever else shares the cores).
run() {
  local name=$1 extra pi pp ipid ppid id
  if [ "$2" = on ]; then extra=("${on_env[@]}"); else extra=("${off_env[@]}"); fi
  pi=$(free_port); pp=$(free_port)
  # The bench's log level hides info lines; the sink's stop line is info.
  env "${common_env[@]}" "${extra[@]}" CINEMO__LOG__LEVEL='warn,cinemo::kinesis=info' \
    CINEMO__INTERNAL__LISTEN="127.0.0.1:$pi" CINEMO__STORAGE__URL="sqlite://$work/$name.db" \
    "$BIN" --mode internal >"$work/$name-internal.log" 2>&1 &
  ipid=$!; track_pid $ipid
  env "${common_env[@]}" "${extra[@]}" CINEMO__LOG__LEVEL='warn,cinemo::kinesis=info' \
    CINEMO__PUBLIC__LISTEN="127.0.0.1:$pp" CINEMO__PUBLIC__INTERNAL_URL="http://127.0.0.1:$pi" \
    "$BIN" --mode public >"$work/$name-public.log" 2>&1 &
  ppid=$!; track_pid $ppid
  wait_port "$pi"; wait_port "$pp"
  "$BIN" healthcheck "http://127.0.0.1:$pp" || die "public tier not live"
  id=$(curl -fsS -X POST -H 'content-type: application/json' -d '{"name":"Bench Customer"}' \
    "http://127.0.0.1:$pp/api/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customerId"])')
  local cpu_before cpu_after
  cpu_before=$(cpu_ticks $ppid $ipid)
  wrk -t2 -c64 -d"${S}s" --latency -H 'X-Trace: bench-trace-token' \
    "http://127.0.0.1:$pp/api/customers/$id" >"$work/$name.wrk"
  cpu_after=$(cpu_ticks $ppid $ipid)
  wrk -t2 -c"$paced_conns" -d"${S}s" --latency -s "$work/paced.lua" \
    -H 'X-Trace: bench-trace-token' "http://127.0.0.1:$pp/api/customers/$id" >"$work/$name-paced.wrk"
  kill -TERM $ppid; wait $ppid || true
  kill -TERM $ipid; wait $ipid || true
  local rps p50 p99 non2xx total
  local paced_rps paced_p99 paced_non2xx
  read -r rps p50 p99 non2xx total < <(wrk_summary "$work/$name.wrk")
  read -r paced_rps _ paced_p99 paced_non2xx _ < <(wrk_summary "$work/$name-paced.wrk")
  python3 -c "print(f'$rps $p99 $((non2xx + paced_non2xx)) {$((cpu_after - cpu_before)) / $(getconf CLK_TCK) / $total * 1e6:.1f} $paced_rps $paced_p99')"
}

# Off and on alternate, ROUNDS times each, and the medians are compared: on
# a shared 2-core machine a single pair of runs swings by 10-20% either way.
ROUNDS=${ROUNDS:-3}
off_runs=(); on_runs=()
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS: telemetry off (${S}s at saturation, ${S}s paced at ${PACED_RATE} req/s)"
  off_runs+=("$(run "off-$r" off)")
  log "round $r/$ROUNDS: telemetry on: X-Trace on every request, Kinesis sink ($KINESIS), OTLP export (${S}s + ${S}s)"
  on_runs+=("$(run "on-$r" on)")
done

sink=$({ cat "$work"/on-*-public.log "$work"/on-*-internal.log | grep -h 'kinesis sink stopped' || true; } | python3 -c '
import json, sys
t = {"sent": 0, "retried": 0, "dropped": 0}
for line in sys.stdin:
    e = json.loads(line)
    for k in t: t[k] += e.get(k, 0)
print("sent={sent} retried={retried} dropped={dropped}".format(**t))')
if [ "$KINESIS" = fake ]; then sink="$sink, endpoint received=$(cat "$work/fake-kinesis.count" 2>/dev/null || echo 0)"; fi

python3 - "$KINESIS" "$sink" "$PACED_RATE" "${off_runs[*]}" "${on_runs[*]}" <<'PY'
import statistics, sys
kinesis, sink, rate = sys.argv[1], sys.argv[2], sys.argv[3]
def runs(arg):
    v = [float(x) for x in arg.split()]
    return [v[i:i + 6] for i in range(0, len(v), 6)]
off, on = runs(sys.argv[4]), runs(sys.argv[5])
print()
print(f"{'':<16}{'at saturation':^40}{'paced at %s req/s' % rate:^22}")
print(f"{'run':<16}{'req/s':>10}{'p99 ms':>10}{'cinemo CPU us/req':>20}{'req/s':>11}{'p99 ms':>11}{'non-2xx':>10}")
row = lambda name, r: print(f"{name:<16}{r[0]:>10.0f}{r[1]:>10.2f}{r[3]:>20.1f}{r[4]:>11.0f}{r[5]:>11.2f}{r[2]:>10.0f}")
for i, (a, b) in enumerate(zip(off, on), 1):
    row('off, round %d' % i, a)
    row('on,  round %d' % i, b)
med = lambda rs, k: statistics.median(r[k] for r in rs)
off_rps, on_rps, off_p99, on_p99 = med(off, 0), med(on, 0), med(off, 1), med(on, 1)
off_cpu, on_cpu = med(off, 3), med(on, 3)
off_paced, on_paced = med(off, 5), med(on, 5)
print(f"{'median off':<16}{off_rps:>10.0f}{off_p99:>10.2f}{off_cpu:>20.1f}{med(off, 4):>11.0f}{off_paced:>11.2f}")
print(f"{'median on':<16}{on_rps:>10.0f}{on_p99:>10.2f}{on_cpu:>20.1f}{med(on, 4):>11.0f}{on_paced:>11.2f}")
print(f"throughput ratio on/off: {on_rps / off_rps:.3f}   p99 ratio off/on: {off_p99 / on_p99:.3f} at saturation, "
      f"{off_paced / on_paced:.3f} paced   (target >= 0.9)")
print(f"cinemo CPU per request, off/on: {off_cpu / on_cpu:.3f}   (the same ratio without the endpoint's share of the cores)")
print(f"kinesis sink ({kinesis}, all rounds): {sink}")
PY
