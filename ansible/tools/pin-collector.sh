#!/usr/bin/env bash
# Prints the otelcol-contrib .deb digests to pin in
# ansible/roles/otel_collector/defaults/main.yml, read from the release's
# own checksums file on GitHub (needs access to github.com).
#
#   ansible/tools/pin-collector.sh [VERSION]   (default: the role's otel_collector_version)
set -euo pipefail
defaults="$(dirname "$0")/../roles/otel_collector/defaults/main.yml"
version=${1:-$(sed -n 's/^otel_collector_version: "\(.*\)"$/\1/p' "$defaults")}
[ -n "$version" ] || { echo "error: no version given and none found in $defaults" >&2; exit 2; }
url="https://github.com/open-telemetry/opentelemetry-collector-releases/releases/download/v$version/opentelemetry-collector-releases_otelcol-contrib_checksums.txt"
sums=$(curl -fsSL --retry 3 "$url") || { echo "error: cannot fetch $url" >&2; exit 1; }
echo "otel_collector_version: \"$version\""
echo "otel_collector_package_sha256:"
for arch in amd64 arm64; do
  sum=$(printf '%s\n' "$sums" | awk -v f="otelcol-contrib_${version}_linux_${arch}.deb" '$2 == f { print $1 }')
  [[ $sum =~ ^[0-9a-f]{64}$ ]] || { echo "error: no sha256 for $arch in $url" >&2; exit 1; }
  echo "  $arch: \"$sum\""
done
