#!/usr/bin/env bash
# Smoke test of a deployed cinemo through its public tier: the gate between
# edge and stable, and the trigger of the automatic rollback.
#
#   CINEMO_SMOKE_URL=https://edge.example smoke.sh
#
# Environment:
#   CINEMO_SMOKE_URL       the public tier's base URL (required)
#   CINEMO_BIN             the cinemo binary to run the smoke command with;
#                          default: the host's release build in $CINEMO_DIST
#                          when that is set (the workflows), else
#                          $CARGO_TARGET_DIR/release/cinemo
#   CINEMO_EXPECT_GIT_SHA  when set, /api/version must report this git sha:
#                          a rollout that silently left the old build in
#                          place must not pass as a good release
#   CINEMO_SMOKE_BUILD     "debug": when no binary is found, build one first
#                          (the by-hand rollback workflow has no artefact)
#   CINEMO_SMOKE_ATTEMPTS  tries before giving up (default 1); the pipeline
#                          uses a few, spaced CINEMO_SMOKE_INTERVAL seconds
#                          (default 10), while an instance refresh settles
source "$(dirname "$0")/../lib.sh"

url=${CINEMO_SMOKE_URL:-}
[ -n "$url" ] || die "CINEMO_SMOKE_URL is not set (the public tier's base URL)"
bin=${CINEMO_BIN:-}
if [ -z "$bin" ] && [ -n "${CINEMO_DIST:-}" ]; then
  host=$(uname -m)-unknown-linux-gnu
  bin=$(ls "$CINEMO_DIST"/cinemo-*-"$host" 2>/dev/null | head -n 1 || true)
fi
bin=${bin:-$CARGO_TARGET_DIR/release/cinemo}
if [ ! -f "$bin" ] && [ "${CINEMO_SMOKE_BUILD:-}" = debug ]; then
  log "building the smoke client (cargo build --locked, debug)"
  (cd "$CINEMO_ROOT" && cargo build --locked --bin cinemo)
  bin=$CARGO_TARGET_DIR/debug/cinemo
fi
[ -f "$bin" ] || die "no cinemo binary at $bin (set CINEMO_BIN, or run release-build.sh)"
[ -x "$bin" ] || chmod +x "$bin"  # artifacts lose their mode bits on download

attempts=${CINEMO_SMOKE_ATTEMPTS:-1}
interval=${CINEMO_SMOKE_INTERVAL:-10}
log "smoke test against $url with $("$bin" --version)"
ok=0
for ((try = 1; try <= attempts; try++)); do
  if "$bin" smoke --url "$url"; then ok=1; break; fi
  if ((try < attempts)); then
    echo "smoke attempt $try/$attempts failed; retrying in ${interval}s" >&2
    sleep "$interval"
  fi
done
((ok)) || die "smoke test FAILED against $url after $attempts attempt(s)"

if [ -n "${CINEMO_EXPECT_GIT_SHA:-}" ]; then
  python3 - "$url" "$CINEMO_EXPECT_GIT_SHA" <<'PY'
import json, sys, urllib.request
url, want = sys.argv[1].rstrip("/"), sys.argv[2]
with urllib.request.urlopen(f"{url}/api/version", timeout=10) as r:
    got = json.load(r)
sha = str(got.get("git_sha", ""))
if not (sha and (sha.startswith(want) or want.startswith(sha))):
    sys.exit(f"error: {url} runs git sha {sha!r} ({got}), expected {want}: the rollout did not take")
print(f"version check: {url} runs {got.get('version')} ({sha}, {got.get('channel')})")
PY
fi
log "smoke test passed against $url"
