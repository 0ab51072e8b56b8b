#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: native `cargo test`, the federated app through
# Flower's own SuperLink and SuperNodes, the browser suite with `wasm-pack test --headless
# --chrome` in headless Chromium with WebGPU, and the page end to end.
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
# The federated app drives the `medfocus` binary `cargo test` just built (debug).
export MEDFOCUS_BIN="$CARGO_TARGET_DIR/debug/medfocus"
step federated "$MEDFOCUS_FEDERATED_VENV/bin/python" -m unittest discover -s federated/tests -v
# Release: burn's kernels built at opt-level 0 make the browser tests crawl. The driver is
# Debian's; webdriver.json enables WebGPU (SwiftShader without a GPU). The runner's 20 s budget
# per test binary is too short for SwiftShader compiling the CLIP kernels on 2 cores.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
step browser wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --release
step page-build ./scripts/serve.sh --build-only
step page node --test www/e2e/

# One closing line over all suites (each runner prints its own, per test binary): cargo's and
# wasm-bindgen-test's "test result: ok. N passed; M failed; …", node's "# pass N" / "# fail M",
# Python unittest's "Ran N tests" then "OK (skipped=S)" or "FAILED (failures=F, errors=E)".
read -r passed failed < <(cat "$logs"/*.log | awk '
  /^test result: / { for (i = 2; i <= NF; i++) { if ($i == "passed;") p += $(i - 1); if ($i == "failed;") f += $(i - 1) } }
  /^# pass [0-9]+$/ { p += $3 }
  /^# fail [0-9]+$/ { f += $3 }
  /^Ran [0-9]+ tests? in / { ran = $2 }
  /^(OK|FAILED)( \(|$)/ && ran != "" {
    bad = 0; skipped = 0
    while (match($0, /(failures|errors|skipped)=[0-9]+/)) {
      pair = substr($0, RSTART, RLENGTH); split(pair, kv, "=")
      if (kv[1] == "skipped") skipped += kv[2]; else bad += kv[2]
      $0 = substr($0, RSTART + RLENGTH)
    }
    p += ran - bad - skipped; f += bad; ran = ""
  }
  END { print p + 0, f + 0 }')
echo "=== times: ${timings[*]}"
echo "all suites: $passed passed, $failed failed"
