#!/usr/bin/env bash
# Builds the page's threaded CPU module into pkg-threads/: the same crate for wasm32 with the
# `atomics` target feature, so that burn's CPU backend (flex) runs its rayon pool on Web Workers
# (wasm-bindgen-rayon). The engine loads it instead of pkg/ where the page is cross-origin
# isolated and the model work runs on the CPU (www/worker/wasm.js). It has no WebGPU (build.rs).
#
# Threads in wasm need Rust's standard library rebuilt with atomics: a nightly toolchain with
# rust-src (`-Z build-std`), pinned here; rustup installs it on first use.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
toolchain="${MEDFOCUS_THREADS_TOOLCHAIN:-nightly-2026-05-20}"
rustup toolchain install "$toolchain" --profile minimal --component rust-src --target wasm32-unknown-unknown >&2
# A target folder of its own: another toolchain and other flags than the page's main module.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}/wasm-threads"

# .cargo/config.toml's flags for wasm32 (getrandom's backend, simd128), plus the threads' ones.
export RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+atomics,+bulk-memory,+simd128'
# Link-time only (cargo rustc passes them to this crate alone, so changing them rebuilds nothing
# else): a shared, imported memory up to wasm32's 4 GiB, and the thread-local storage exports
# wasm-bindgen's thread start-up calls.
cargo "+$toolchain" rustc --locked --lib --release --target wasm32-unknown-unknown \
  -Z build-std=panic_abort,std -- \
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base

rm -rf pkg-threads
wasm-bindgen --target web --out-dir pkg-threads --out-name medfocus \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/medfocus.wasm"
# wasm-bindgen-rayon's workers import the package by its folder ("../../.."), which a bundler
# resolves through package.json (no "type": "module": webpack would then refuse a folder import).
cat > pkg-threads/package.json <<'EOF'
{
  "name": "medfocus-threads",
  "main": "medfocus.js",
  "module": "medfocus.js",
  "sideEffects": ["./snippets/*"]
}
EOF
echo "pkg-threads/: the threaded CPU module ($(du -h pkg-threads/medfocus_bg.wasm | cut -f1))" >&2
