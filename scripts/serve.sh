#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds the wasm package into pkg/ (and the threaded CPU module into
# pkg-threads/, scripts/build-threads.sh) and serves the page on
# http://127.0.0.1:8080 (override with PORT), with this site's models from models/ (written by
# `medfocus weights export-web`; MEDFOCUS_SITE_MODELS names another folder) at /models/ when
# present; with --build-only, bundles into dist/ and stops.
# Nothing leaves the machine: the page and everything it computes stay local.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/setup.sh

wasm-pack build --release --target bundler --out-dir pkg --out-name medfocus
./scripts/build-threads.sh
if [ "${1:-}" = "--build-only" ]; then
  # Bundle into dist/ without serving (the page's end-to-end test uses this).
  exec npx webpack --mode production
fi
exec npx webpack serve --mode development --host 127.0.0.1 --port "${PORT:-8080}"
