#!/usr/bin/env bash
# Release build of cinemo for one target, with its checksum and SBOM.
#
#   release-build.sh [--target TRIPLE]        (default: the host's triple)
#
# Environment:
#   CINEMO_CHANNEL  channel baked into the binary (build.rs); default edge:
#                   every build of main goes to edge first, and promotion to
#                   stable ships these same bytes, never a rebuild.
#   CINEMO_GIT_SHA  default: git rev-parse --short=12 HEAD
#   CINEMO_DIST     where the artefacts go; default $CINEMO_CACHE/dist
#
# Writes to $CINEMO_DIST:
#   cinemo-<version>-<target>             the binary
#   cinemo-<version>-<target>.sha256      sha256sum format
#   cinemo-<version>-<target>.cdx.json    CycloneDX SBOM (sbom.sh)
#   cinemo-<version>-<target>.env         VERSION/GIT_SHA/CHANNEL/TARGET for later steps
# and prints the checksum and an SBOM summary.
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"

target=$(rustc -vV | sed -n 's/^host: //p')
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: release-build.sh [--target TRIPLE])" ;;
  esac
done

export CINEMO_CHANNEL=${CINEMO_CHANNEL:-edge}
export CINEMO_GIT_SHA=${CINEMO_GIT_SHA:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
CINEMO_DIST=${CINEMO_DIST:-$CINEMO_CACHE/dist}
mkdir -p "$CINEMO_DIST"
CINEMO_DIST=$(cd "$CINEMO_DIST" && pwd)
# Reproducibility: the commit's time, not the wall clock, for the one thing
# that embeds a date, the SBOM (cargo-cyclonedx honours SOURCE_DATE_EPOCH).
# Not exported to cargo build: no C source in the tree (ring, aws-lc, SQLite)
# uses __DATE__/__TIME__, but their build scripts (cc) track the variable, so
# a new value every commit would rebuild most dependencies on every release
# build (about 7 minutes of a CI run) instead of reusing .ci/run's build.
sbom_epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

version=$(cargo metadata --format-version 1 --no-deps --locked --offline 2>/dev/null \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cinemo"))' \
  || true)
[ -n "$version" ] || version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "cannot read the version from Cargo.toml"

host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$target" != "$host" ]; then
  # Cross builds (the post-merge workflow's aarch64 job): the target's
  # standard library comes from rustup, the linker and C compiler (ring /
  # aws-lc-sys) from Debian/Ubuntu's cross gcc. CI here has neither.
  rustup target list --installed | grep -qx "$target" \
    || die "the $target standard library is not installed (rustup target add $target)"
  case "$target" in
    aarch64-unknown-linux-gnu)
      command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing (apt-get install gcc-aarch64-linux-gnu)"
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
      export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
      export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
      ;;
  esac
fi

log "cargo build --release --locked for $target (cinemo $version, $CINEMO_GIT_SHA, $CINEMO_CHANNEL)"
started=$SECONDS
if [ "$target" = "$host" ]; then
  # No --target for the host: the binary lands where every other script
  # expects it ($CARGO_TARGET_DIR/release/cinemo, docs/interfaces.md) and
  # reuses the dependencies other release builds already compiled.
  cargo build --release --locked --bin cinemo
  built="$CARGO_TARGET_DIR/release/cinemo"
else
  cargo build --release --locked --target "$target" --bin cinemo
  built="$CARGO_TARGET_DIR/$target/release/cinemo"
fi
log "release build took $((SECONDS - started))s"

name="cinemo-$version-$target"
cp "$built" "$CINEMO_DIST/$name"
(cd "$CINEMO_DIST" && sha256sum "$name" >"$name.sha256")
cat >"$CINEMO_DIST/$name.env" <<ENV
CINEMO_VERSION=$version
CINEMO_GIT_SHA=$CINEMO_GIT_SHA
CINEMO_CHANNEL=$CINEMO_CHANNEL
CINEMO_TARGET=$target
CINEMO_BINARY=$name
ENV

SOURCE_DATE_EPOCH=$sbom_epoch "$(dirname "$0")/sbom.sh" --target "$target" --out "$CINEMO_DIST/$name.cdx.json"

log "release artefacts in $CINEMO_DIST"
ls -l "$CINEMO_DIST/$name"*
echo "checksum: $(cat "$CINEMO_DIST/$name.sha256")"
if [ "$target" = "$host" ]; then
  echo "version:  $("$CINEMO_DIST/$name" --version)"
fi
