#!/usr/bin/env bash
# Check downloaded release artefacts against their .sha256 files before any
# step uses them (bake, smoke), and give the binaries back their mode bits
# (GitHub artifacts do not keep them).
#
#   verify-dist.sh [DIR]   (default: $CINEMO_DIST or $CINEMO_CACHE/dist)
source "$(dirname "$0")/../lib.sh"
dir=${1:-${CINEMO_DIST:-$CINEMO_CACHE/dist}}
[ -d "$dir" ] || die "no release artefacts at $dir"
shopt -s nullglob
sums=("$dir"/*.sha256)
((${#sums[@]})) || die "no .sha256 files in $dir"
for s in "${sums[@]}"; do
  (cd "$dir" && sha256sum --check --strict "$(basename "$s")") || die "checksum mismatch: $s"
  chmod +x "${s%.sha256}"
done
