#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds the wasm package into pkg/ and serves the page on
# http://127.0.0.1:8080 (override with PORT). Nothing leaves the machine: the page runs locally.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/setup.sh

wasm-pack build --release --target bundler --out-dir pkg --out-name medfocus
if [ "${1:-}" = "--build-only" ]; then
  npx webpack --mode production
  exit 0
fi
exec npx webpack serve --mode development --host 127.0.0.1 --port "${PORT:-8080}"
