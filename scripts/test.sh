#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: native `cargo test`, then the browser suite
# with `wasm-pack test --headless --chrome` in headless Chromium with WebGPU.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/setup.sh

# Mesa's Vulkan driver complains on every device open when this is unset (headless machines, CI).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/medfocus-runtime-$(id -u)"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi

start=$SECONDS
echo "=== native tests (cargo test)"
cargo test --locked
native_s=$((SECONDS - start))

start=$SECONDS
echo "=== browser tests (wasm-pack test --headless --chrome, release build)"
# Release: burn's kernels built at opt-level 0 make the browser tests crawl. The driver is
# Debian's; webdriver.json enables WebGPU (SwiftShader without a GPU).
wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --release
browser_s=$((SECONDS - start))

echo "=== all tests passed (native ${native_s}s, browser ${browser_s}s)"
