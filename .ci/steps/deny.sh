#!/usr/bin/env bash
# cargo deny against Cargo.lock: advisories, licenses, bans, sources (deny.toml).
#
# CI cannot reach GitHub, so the RustSec database comes from the dated
# snapshot in $CINEMO_SHARED/advisory-db (a plain directory, no .git). cargo-deny
# only opens a database that is a git checkout and dates it by its HEAD
# commit, so this script turns the snapshot into one under
# $CINEMO_CACHE/advisory-dbs, committed and timestamped at the snapshot's own
# date (from SNAPSHOT), and runs cargo-deny with --offline: nothing is fetched,
# and deny.toml's maximum-db-staleness judges the snapshot's real age.
#
# In GitHub Actions set CINEMO_ADVISORY_SOURCE=fetch to let cargo-deny clone
# the live database instead (the runners have the network).
#
# Usage: deny.sh [cargo-deny check args...]   e.g. deny.sh advisories
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_tools.sh"
cd "$CINEMO_ROOT"

ensure_cargo_deny
cargo-deny --version

export CINEMO_ADVISORY_DBS="$CINEMO_CACHE/advisory-dbs"
mkdir -p "$CINEMO_ADVISORY_DBS"

# The crates' manifests must be on disk for the license check; fetching is the
# one step that talks to crates.io, and --locked keeps Cargo.lock as committed.
log "cargo fetch --locked"
cargo fetch --locked --quiet

offline=(--offline)
if [ "${CINEMO_ADVISORY_SOURCE:-snapshot}" = fetch ]; then
  offline=()
  log "advisory database: fetched live by cargo-deny"
else
  src="$CINEMO_SHARED/advisory-db"
  [ -f "$src/SNAPSHOT" ] || die "no advisory database snapshot at $src (expected shared/advisory-db beside the clone, with SNAPSHOT)"
  snapshot=$(cat "$src/SNAPSHOT")
  snap_date=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' <<<"$snapshot" | tail -n 1)
  [ -n "$snap_date" ] || die "cannot read a date from $src/SNAPSHOT: $snapshot"
  age_days=$(( ($(date -u +%s) - $(date -u -d "$snap_date" +%s)) / 86400 ))
  log "advisory database: $snapshot, $age_days days old (deny.toml: maximum-db-staleness)"

  # Where cargo-deny looks for the database of deny.toml's db-url: it names
  # the directory after a hash of the URL, so ask it rather than guess.
  db_dir=$(cargo-deny --offline --locked -L debug check advisories 2>&1 \
    | grep -oE "Opening advisory database at '[^']+'" | head -n 1 | cut -d"'" -f2 || true)
  [ -n "$db_dir" ] || die "cargo-deny did not say where it expects the advisory database (run: cargo deny -L debug check advisories)"
  case "$db_dir" in "$CINEMO_ADVISORY_DBS"/*) ;; *) die "cargo-deny wants the database at $db_dir, outside $CINEMO_ADVISORY_DBS: check deny.toml's db-path" ;; esac

  stamp="$db_dir/.cinemo-snapshot"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$snapshot" ]; then
    log "preparing $db_dir from the snapshot"
    rm -rf "$db_dir"
    mkdir -p "$db_dir"
    cp -R "$src/." "$db_dir/"
    chmod -R u+w "$db_dir"
    export GIT_AUTHOR_DATE="${snap_date}T00:00:00Z" GIT_COMMITTER_DATE="${snap_date}T00:00:00Z"
    git -C "$db_dir" init -q -b main
    git -C "$db_dir" add -A
    git -C "$db_dir" -c user.name=cinemo-ci -c user.email=ci@cinemo.invalid \
      commit -q -m "$snapshot"
    unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
    # cargo-deny dates a checkout by max(HEAD commit, mtime of .git/HEAD):
    # give the file the snapshot's date too, or every copy would look fresh.
    touch -d "${snap_date}T00:00:00Z" "$db_dir/.git/HEAD"
    printf '%s' "$snapshot" >"$stamp"
  fi
fi

log "cargo deny check ${*:-(all)}"
cargo-deny "${offline[@]}" --locked check --show-stats "$@"
