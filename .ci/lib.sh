# shellcheck shell=bash
# Shared helpers for .ci/run and the suite scripts. Source it; do not run it.
#
# Conventions every script follows:
#   - downloads and tools live in $CINEMO_CACHE (outside the clone), so a
#     second run on the same machine reuses them; cargo builds into the
#     project's own target/ (what `cargo run` uses) unless CARGO_TARGET_DIR
#     says otherwise (.ci/run puts CI's builds in $CINEMO_CACHE/target);
#   - servers bind 127.0.0.1 only and are stopped by PID when the script exits;
#   - a tool the suite needs and cannot find is an error, never a skip.

set -euo pipefail

CINEMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CINEMO_CACHE=${CINEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cinemo}
CINEMO_SHARED=${CINEMO_SHARED:-$CINEMO_ROOT/../shared}
export CINEMO_ROOT CINEMO_CACHE CINEMO_SHARED
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CINEMO_ROOT/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH="$CINEMO_CACHE/bin:$PATH"
mkdir -p "$CINEMO_CACHE/bin" "$CINEMO_CACHE/logs"

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---- installs ---------------------------------------------------------------

_apt_updated=0
# need_apt PKG...: install the Debian packages that are not installed yet
# (as root; anyone else is told, in one line, what to install).
need_apt() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages: run 'sudo apt-get install ${missing[*]}' and try again"
  if [ "$_apt_updated" = 0 ]; then apt-get update -qq; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# _venv DIR REQUIREMENTS: a venv at DIR with REQUIREMENTS installed, on PATH;
# rebuilt when the requirements file changes.
_venv() {
  local venv=$1 req=$2 stamp
  stamp="$venv/.req-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt python3-venv
    log "installing Python tools ($(basename "$req")) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
  export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
}

# ensure_venv: the ops suites' Python tools (.ci/requirements.txt: Ansible,
# moto, pytest, schemathesis, ...) on PATH.
ensure_venv() { _venv "$CINEMO_CACHE/venv" "$CINEMO_ROOT/.ci/requirements.txt"; }

# ensure_test_venv: only what the Rust suites use (.ci/requirements-test.txt:
# nx-27017, the MongoDB stand-in), a few MB instead of the ops tool set.
ensure_test_venv() { _venv "$CINEMO_CACHE/venv-test" "$CINEMO_ROOT/.ci/requirements-test.txt"; }

# ensure_ansible_collections: amazon.aws, community.aws and community.general,
# extracted from the PyPI `ansible` wheel (Galaxy is unreachable from CI).
ensure_ansible_collections() {
  local dir="$CINEMO_CACHE/ansible-collections" version=12.3.0
  if [ ! -f "$dir/.ansible-$version" ]; then
    log "extracting Ansible collections from ansible==$version"
    ensure_venv
    local tmp; tmp=$(mktemp -d)
    pip download -q --no-deps --disable-pip-version-check -d "$tmp" "ansible==$version"
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && python3 -m zipfile -e "$tmp"/ansible-*.whl "$tmp/x" >/dev/null)
    mkdir -p "$dir/ansible_collections/amazon" "$dir/ansible_collections/community"
    mv "$tmp/x/ansible_collections/amazon/aws" "$dir/ansible_collections/amazon/"
    mv "$tmp/x/ansible_collections/community/aws" "$dir/ansible_collections/community/"
    mv "$tmp/x/ansible_collections/community/general" "$dir/ansible_collections/community/"
    mv "$tmp/x/ansible_collections/ansible" "$dir/ansible_collections/" 2>/dev/null || true
    rm -rf "$tmp"
    touch "$dir/.ansible-$version"
  fi
  export ANSIBLE_COLLECTIONS_PATH="$dir"
  export XDG_CACHE_HOME="${CINEMO_CACHE}/xdg"
}

# ensure_node_tools: kinesalite (a local Kinesis) under the cache dir.
ensure_node_tools() {
  local dir="$CINEMO_CACHE/node"
  if [ ! -d "$dir/node_modules/kinesalite" ]; then
    command -v npm >/dev/null || need_apt nodejs npm
    log "installing kinesalite into $dir"
    mkdir -p "$dir"
    npm install -q --no-audit --no-fund --prefix "$dir" --cache "$CINEMO_CACHE/npm-cache" kinesalite@3.3.3 >/dev/null
  fi
  export CINEMO_NODE_MODULES="$dir/node_modules"
}

# ensure_postgres: PostgreSQL server binaries (initdb, pg_ctl, postgres).
ensure_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    need_apt postgresql
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  export CINEMO_PG_BIN="$bin"
}

# ---- servers -----------------------------------------------------------------

_ci_pids=()
_ci_cleanup() {
  local pid
  for pid in "${_ci_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${_ci_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap _ci_cleanup EXIT

# track_pid PID: stop this process when the script exits.
track_pid() { _ci_pids+=("$1"); }

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
  local port=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listening on 127.0.0.1:$port after ${secs}s"
}

# wrk_summary FILE: the figures of one `wrk --latency` run, as
# "rps p50_ms p99_ms non2xx requests" (the benchmarks under bench/).
wrk_summary() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = int(non2xx.group(1)) if non2xx else 0
print(f"{rps:.0f} {ms('50%'):.2f} {ms('99%'):.2f} {errors} {total}")
PY
}

# paced_wrk_script FILE: a wrk script for paced load. Every connection
# sends one request, then pauses a random time (exponential, mean 10 ms:
# wrk's delay() hook), so RATE/100 connections (paced_connections RATE)
# make Poisson arrivals at RATE req/s, a little less as latency adds to
# each cycle (print the achieved rate). A fixed 10 ms pause instead keeps
# the connections in lockstep, bursts of ~100 requests every 10 ms, and
# measures the burst's queueing rather than the rate (docs/performance.md).
# wrk is light enough to leave the cores to the servers; hey costs so much
# CPU that its own p99 on the single-hop ceiling is 3.4 ms at 10,000 req/s.
# (wrk2, the constant-throughput tool, is not packaged for Debian.)
paced_wrk_script() {
  cat >"$1" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args) math.randomseed(os.time() * 100 + (id or 0)) end
function delay() return math.floor(-math.log(1 - math.random()) * 10 + 0.5) end
LUA
}

# paced_connections RATE: connections for paced_wrk_script to offer RATE
# req/s (5% over RATE/100, for the time each request itself takes).
paced_connections() { echo $((($1 * 105 / 100 + 99) / 100)); }

# start_moto: a moto server on a free loopback port; exports AWS_ENDPOINT_URL
# and dummy credentials for everything started after it.
start_moto() {
  ensure_venv
  local port; port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >"$CINEMO_CACHE/logs/moto.log" 2>&1 &
  track_pid $!
  wait_port "$port" 60
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" MOTO_PORT="$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1} AWS_REGION=${AWS_REGION:-eu-west-1}
}
