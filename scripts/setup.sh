#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to ready for building, serving and testing MedFocus.
# Idempotent: every step checks first and skips what is already there. Everything comes from
# Debian's packages, crates.io (built from source), rustup and the npm registry: no prebuilt
# binaries from anywhere else (wasm-pack would otherwise download wasm-bindgen and chromedriver).
# Sourced by serve.sh and test.sh; can be run on its own.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ---------------------------------------------------------------------
# chromium + chromium-driver: browser tests; mesa-vulkan-drivers + libvulkan1: a Vulkan adapter
# (lavapipe) so the wgpu path is tested on GPU-less machines; nodejs/npm: the page's bundler.
apt_packages=(chromium chromium-driver mesa-vulkan-drivers libvulkan1 ca-certificates curl git build-essential pkg-config)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs npm)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Rust ----------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    log "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# A tool's published Cargo.lock can name a dependency version the registry no longer serves
# (seen: wasm-bindgen-cli 0.2.130's webpki-roots 1.0.11); then resolve afresh instead.
cargo_install() {
  cargo install --quiet --locked "$@" || {
    log "cargo install --locked $* failed; retrying with freshly resolved dependencies"
    cargo install --quiet "$@"
  }
}

# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  log "building wasm-bindgen-cli $bindgen_version from crates.io"
  cargo_install --force wasm-bindgen-cli --version "$bindgen_version"
fi
if ! command -v wasm-pack >/dev/null 2>&1; then
  log "building wasm-pack from crates.io"
  cargo_install wasm-pack
fi

# --- npm packages for the page -------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Python for the federated app (federated/: Flower, pinned in its pyproject.toml) ----------
# A venv outside the clone; the app installed editable, so `python -m medfocus_fl.deploy` runs.
federated_venv="${MEDFOCUS_FEDERATED_VENV:-$HOME/.cache/medfocus/federated-venv}"
# (Re)installed when missing, when pyproject.toml changed, or when the editable install points
# into another clone.
installed_app="$("$federated_venv/bin/python" -c 'import flwr, matplotlib, medfocus_fl; print(medfocus_fl.__file__)' 2>/dev/null || true)"
if [[ "$installed_app" != "$repo/federated/"* ]] || [ federated/pyproject.toml -nt "$federated_venv/.installed" ]; then
  log "installing the federated app and Flower into $federated_venv"
  if ! python3 -m venv --help >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
  fi
  python3 -m venv "$federated_venv"
  "$federated_venv/bin/pip" install --quiet --disable-pip-version-check -e federated
  touch "$federated_venv/.installed"
fi
export MEDFOCUS_FEDERATED_VENV="$federated_venv"

# One cargo target dir outside the clone, so CI runs and clones on this machine share builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medfocus/target}"
# wasm-pack keeps its own cache outside the clone too.
export WASM_PACK_CACHE="${WASM_PACK_CACHE:-$HOME/.cache/medfocus/wasm-pack}"
log "ready (cargo target dir: $CARGO_TARGET_DIR)"
