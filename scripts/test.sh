#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: native `cargo test`, the browser suite with
# `wasm-pack test --headless --chrome` in headless Chromium with WebGPU, and the page end to end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/setup.sh

# Mesa's Vulkan driver complains on every device open when this is unset (headless machines, CI).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/medfocus-runtime-$(id -u)"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
timings=()
step() { # step NAME COMMAND...: runs and times one suite, keeping its output for the totals.
  local name="$1" start=$SECONDS
  shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$logs/$name.log"
  timings+=("$name $((SECONDS - start))s")
}

step native cargo test --locked
# Release: burn's kernels built at opt-level 0 make the browser tests crawl. The driver is
# Debian's; webdriver.json enables WebGPU (SwiftShader without a GPU).
step browser wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --release
step page-build ./scripts/serve.sh --build-only
step page node --test www/e2e/

# One closing line over all suites (each runner prints its own, per test binary).
passed=$(cat "$logs"/*.log | sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1/p; s/^# pass ([0-9]+)$/\1/p' | awk '{ total += $1 } END { print total + 0 }')
failed=$(cat "$logs"/*.log | sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\2/p; s/^# fail ([0-9]+)$/\1/p' | awk '{ total += $1 } END { print total + 0 }')
echo "=== times: ${timings[*]}"
echo "all suites: $passed passed, $failed failed"
