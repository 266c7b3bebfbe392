#!/usr/bin/env bash
# rustfmt and clippy, warnings as errors, against the committed Cargo.lock.
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (all targets, -D warnings)"
cargo clippy --locked --all-targets -- -D warnings
