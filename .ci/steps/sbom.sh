#!/usr/bin/env bash
# CycloneDX SBOM (JSON, spec 1.5) of the cinemo binary for one target.
#
#   sbom.sh [--target TRIPLE] [--out FILE]
#
# Lists every crate that goes into the binary for that target (build-time
# crates included: proc macros and build scripts shape the code too), with
# version, purl, license expression and the crates.io checksum from
# Cargo.lock. Timestamped with SOURCE_DATE_EPOCH when set, so the same commit
# gives the same SBOM. Called by release-build.sh; runnable on its own.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_tools.sh"
cd "$CINEMO_ROOT"

target=$(rustc -vV | sed -n 's/^host: //p')
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: sbom.sh [--target TRIPLE] [--out FILE])" ;;
  esac
done
[ -n "$out" ] || out="${CINEMO_DIST:-$CINEMO_CACHE/dist}/cinemo-$target.cdx.json"
mkdir -p "$(dirname "$out")"

ensure_cargo_cyclonedx
# cargo-cyclonedx always writes next to Cargo.toml; give the file a name no
# one else uses and move it out at once (the work tree is shared).
tmpname=".sbom-$$-$RANDOM"
trap 'rm -f "$CINEMO_ROOT/$tmpname.json"; _ci_cleanup' EXIT
log "CycloneDX SBOM for $target"
cargo-cyclonedx cyclonedx --format json --spec-version 1.5 --target "$target" \
  --override-filename "$tmpname" -qq
mv "$CINEMO_ROOT/$tmpname.json" "$out"

python3 - "$out" <<'PY'
import collections, json, sys
path = sys.argv[1]
bom = json.load(open(path))
main = bom["metadata"]["component"]
comps = bom.get("components", [])
lic = collections.Counter()
for c in comps:
    for l in c.get("licenses", []) or [{"expression": "(none)"}]:
        lic[l.get("expression") or l.get("license", {}).get("id") or l.get("license", {}).get("name", "?")] += 1
missing_hash = [c["name"] for c in comps if not c.get("hashes")]
print(f"sbom:     {path}")
print(f"          {bom['bomFormat']} {bom['specVersion']}, {main['name']} {main.get('version')}, "
      f"{len(comps)} components, generated {bom['metadata'].get('timestamp')}")
print("          licenses: " + ", ".join(f"{k} x{v}" for k, v in lic.most_common(6))
      + (", ..." if len(lic) > 6 else ""))
if missing_hash:
    print(f"          without a checksum: {len(missing_hash)} ({', '.join(missing_hash[:5])})")
if not comps:
    sys.exit("error: the SBOM lists no components")
PY
