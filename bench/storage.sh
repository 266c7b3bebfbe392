#!/usr/bin/env bash
# Rows per second for one 50,000-item batch through the public tier (public
# and internal as two processes, as in production) on SQLite, PostgreSQL and
# nx-27017 (a stand-in for MongoDB: its figure says nothing about mongod),
# next to the same rows loaded with PostgreSQL's own COPY in the same run:
# the ceiling. Target: batch/COPY >= 0.5 on PostgreSQL.
#
#   bench/storage.sh            # N=50000 by default; N=... to change
#                               # best of ROUNDS=3 loads on every line
#
# Builds the release binary once (CARGO_TARGET_DIR is honoured). Servers bind
# 127.0.0.1 and are stopped by PID on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-50000}
ROUNDS=${ROUNDS:-3}
PG_BIN=${CINEMO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
NX=${CINEMO_NX27017:-$(command -v nx-27017 || echo "$HOME/.cache/cinemo/venv/bin/nx-27017")}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/pg/PG_VERSION" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -fs "$1/api/health/live" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

# CINEMO_BIN=... measures a binary built elsewhere (e.g. an older release).
if [ -n "${CINEMO_BIN:-}" ]; then
  BIN=$CINEMO_BIN
else
  echo "building release binary (once)..." >&2
  (cd "$ROOT" && cargo build --release -q)
  BIN="$TARGET/release/cinemo"
fi

python3 - "$N" "$work" <<'PY'
import json, sys, time, os
n, work = int(sys.argv[1]), sys.argv[2]
with open(os.path.join(work, "batch.json"), "w") as f:
    json.dump([{"name": f"customer-{i:06d}"} for i in range(n)], f, separators=(",", ":"))
now = int(time.time() * 1000)
# The rows the batch stores (id, body), for COPY.
with open(os.path.join(work, "rows.tsv"), "w") as f:
    for i in range(n):
        body = json.dumps({"name": f"customer-{i:06d}", "dateCreated": now}, separators=(",", ":"))
        f.write(f"{i:024x}\t{body}\n")
PY

# PostgreSQL: a throwaway cluster.
mkdir "$work/pg" && chown postgres:postgres "$work/pg"
PG_PORT=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$work/pg" -U postgres -A trust --no-sync -E UTF8 >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-k $work/pg -p $PG_PORT -c listen_addresses=127.0.0.1" start >/dev/null
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

# nx-27017, a file database.
NX_PORT=$(free_port)
if [ -x "$NX" ]; then
  "$NX" --host 127.0.0.1 -p "$NX_PORT" --db "$work/nx.db" --pid-file "$work/nx.pid" --log-file "$work/nx.log" >/dev/null 2>&1 &
  pids+=($!)
fi

# run_batch TYPE URL: prints rows/s of one N-item batch through the public tier.
run_batch() {
  local type=$1 url=$2 ip pp
  ip=$(free_port); pp=$(free_port)
  env CINEMO_CONFIG_DIR="$ROOT/config" CINEMO__OTLP__ENABLED=false CINEMO__LOG__LEVEL=warn CINEMO__LOG__ACCESS=false \
    CINEMO__STORAGE__TYPE="$type" CINEMO__STORAGE__URL="$url" CINEMO__INTERNAL__LISTEN="127.0.0.1:$ip" \
    "$BIN" --mode internal >"$work/internal-$type.log" 2>&1 &
  local ipid=$!; pids+=($ipid)
  wait_http "http://127.0.0.1:$ip"
  env CINEMO_CONFIG_DIR="$ROOT/config" CINEMO__OTLP__ENABLED=false CINEMO__LOG__LEVEL=warn CINEMO__LOG__ACCESS=false \
    CINEMO__PUBLIC__LISTEN="127.0.0.1:$pp" CINEMO__PUBLIC__INTERNAL_URL="http://127.0.0.1:$ip" \
    "$BIN" --mode public >"$work/public-$type.log" 2>&1 &
  local ppid=$!; pids+=($ppid)
  wait_http "http://127.0.0.1:$pp"
  # Best of ROUNDS batches (each stores N new rows): one 50,000-row load
  # takes a fraction of a second, so a single run is at the mercy of noise.
  local best=0 out rate
  for _ in $(seq 1 "$ROUNDS"); do
    out=$(curl -s -o "$work/answer-$type.json" -w '%{http_code} %{time_total}' \
      -H 'Content-Type: application/json' --data-binary "@$work/batch.json" "http://127.0.0.1:$pp/api/customers/batch")
    [ "${out%% *}" = 200 ] || { echo "batch on $type answered ${out%% *}" >&2; best=0; break; }
    rate=$(python3 -c "print(f'{$N/${out#* }:.0f}')")
    [ "$rate" -gt "$best" ] && best=$rate
  done
  kill "$ppid" "$ipid" 2>/dev/null || true
  echo "$best"
}

copy_rate() {
  local psql="$PG_BIN/psql" start end best=0 rate
  for i in $(seq 1 "$ROUNDS"); do
    "$psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c \
      "CREATE TABLE copy_ceiling_$i (id text COLLATE \"C\" PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    start=$(date +%s.%N)
    "$psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "\\copy copy_ceiling_$i (id, body) FROM '$work/rows.tsv'"
    end=$(date +%s.%N)
    rate=$(python3 -c "print(f'{$N/($end-$start):.0f}')")
    [ "$rate" -gt "$best" ] && best=$rate
  done
  echo "$best"
}

sqlite=$(run_batch sqlite "sqlite://$work/bench.db")
postgres=$(run_batch postgres "$PG_URL")
copy=$(copy_rate)
nx=0
[ -x "$NX" ] && nx=$(run_batch mongodb "mongodb://127.0.0.1:$NX_PORT/?directConnection=true")

printf '\n%-42s %12s %10s\n' "one $N-item batch, public tier (best of $ROUNDS)" "rows/s" "vs COPY"
printf '%-42s %12s %10s\n' "PostgreSQL COPY (ceiling, same rows)" "$copy" "1.00"
for row in "SQLite:$sqlite" "PostgreSQL:$postgres" "nx-27017 (MongoDB stand-in, not mongod):$nx"; do
  name=${row%:*}; rate=${row##*:}
  printf '%-42s %12s %10s\n' "$name" "$rate" "$(python3 -c "print(f'{$rate/$copy:.2f}')")"
done
