#!/usr/bin/env bash
# The fuzz suite: schemathesis drives each tier's own OpenAPI document
# (/api/openapi.json) against the running binary. Any 5xx, any status code
# the document does not list, or any body that does not match its schema
# fails the suite. Uses CINEMO_BIN when set, else builds the debug binary.
#   CINEMO_BIN=target/debug/cinemo .ci/suites/fuzz.sh
# FUZZ_EXAMPLES (default 300) sets the cases per operation.
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"

if [ -z "${CINEMO_BIN:-}" ]; then
  log "CINEMO_BIN is not set: building the debug binary"
  cargo build --quiet --bin cinemo
  CINEMO_BIN="$CARGO_TARGET_DIR/debug/cinemo"
fi
[ -x "$CINEMO_BIN" ] || die "CINEMO_BIN=$CINEMO_BIN is not an executable file"
CINEMO_BIN=$(realpath "$CINEMO_BIN")
examples=${FUZZ_EXAMPLES:-300}

ensure_venv
command -v schemathesis >/dev/null || die "schemathesis is not installed (.ci/requirements.txt)"

work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-fuzz.XXXXXX")
_fuzz_cleanup() { _ci_cleanup; rm -rf "$work"; }
trap _fuzz_cleanup EXIT

public_port=$(free_port)
internal_port=$(free_port)
log "starting cinemo --mode all (public :$public_port, internal :$internal_port)"
# Built-in defaults only (no config dir): no rate limit, so the fuzzer is
# not throttled; the limiter has its own tests in tests/security.
(cd "$work" && exec env \
  CINEMO_CONFIG_DIR="$work/no-config" \
  CINEMO__PUBLIC__LISTEN="127.0.0.1:$public_port" \
  CINEMO__INTERNAL__LISTEN="127.0.0.1:$internal_port" \
  CINEMO__STORAGE__URL="sqlite://$work/fuzz.db?mode=rwc" \
  CINEMO__OTLP__ENABLED=false \
  CINEMO__LOG__LEVEL=warn \
  "$CINEMO_BIN" --mode all) >"$work/cinemo.log" 2>&1 &
track_pid $!
wait_port "$public_port" 60
wait_port "$internal_port" 60

# schemathesis and hypothesis keep caches in the working directory.
cd "$work"
failed=0
for tier in public:$public_port internal:$internal_port; do
  name=${tier%%:*} port=${tier##*:}
  log "schemathesis against the $name tier ($examples cases per operation)"
  if ! schemathesis run "http://127.0.0.1:$port/api/openapi.json" \
      --url "http://127.0.0.1:$port" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
      --max-examples "$examples" \
      --seed 7 \
      --request-timeout 10 \
      --no-color \
      --report junit --report-dir "$CINEMO_CACHE/logs/fuzz-$name"; then
    failed=1
  fi
done

# A 500 is already a finding above; this also catches a panic or an
# unexpected failure the client never saw. (actix_http logs the fuzzer's
# malformed requests at ERROR; those are refusals, not failures.)
bad='panicked|request failed unexpectedly'
if grep -qE "$bad" "$work/cinemo.log"; then
  log "cinemo logged panics or unexpected failures during the run:"
  grep -E "$bad" "$work/cinemo.log" | head -20 >&2
  failed=1
fi
((failed == 0)) || die "the fuzz suite found problems (reports under $CINEMO_CACHE/logs/fuzz-*)"
log "fuzz suite clean"
