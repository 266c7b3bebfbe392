#!/usr/bin/env bash
# Makes a bare Debian 12 (the GitHub Actions job container, debian:12) into
# the machine CI here runs on: base build tools, Python, Node and the Rust
# toolchain pinned by rust-toolchain.toml. Idempotent: on a machine that has
# them (CI here) it only prints what it found.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "error: bootstrap.sh installs Debian packages: run it as root (the CI container is)" >&2; exit 1; }

base=(ca-certificates curl git build-essential pkg-config python3 python3-venv python3-pip nodejs npm unzip xz-utils procps)
missing=()
for p in "${base[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rustup >/dev/null; then
  echo "==> installing rustup (toolchain from rust-toolchain.toml)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none --no-modify-path
fi
# rustup >= 1.28 no longer installs the pinned toolchain on first use.
rustup toolchain install >/dev/null 2>&1 || rustup show active-toolchain
if [ -n "${GITHUB_PATH:-}" ]; then echo "$HOME/.cargo/bin" >>"$GITHUB_PATH"; fi
echo "rust: $(rustc --version), cargo: $(cargo --version)"
echo "python: $(python3 --version), node: $(node --version 2>/dev/null || echo none)"
