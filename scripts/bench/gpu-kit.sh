#!/usr/bin/env bash
# Builds what a bare GPU machine needs to run `scripts/bench/gpu.sh` (issue 35), into gpu-kit/
# (ignored by git; carried beside the repository): the release `medfocus` binary, stripped and
# xz-compressed; wheels of open_clip and its small dependencies for the machine's Python (3.12,
# manylinux), which has PyTorch but not open_clip; Debian's Vulkan loader, for a machine whose
# driver ships no libvulkan.so.1. The checkpoints are made there, by the reference scripts.
#
#   ./scripts/bench/gpu-kit.sh [--features gpu-spirv,gpu-fusion,gpu-autotune] [OUT_DIR]
#
# --features builds the binary with burn's other GPU compiler and schedulers (Cargo.toml's
# `gpu-*` features; no run-time switch exists for them): the table's rows then come from that
# build, named by its label (`medfocus 0.1.0 (spirv+fusion+autotune)`). One binary fits beside the
# repository in the GPU machine's 64 MiB, so each variant is its own kit and its own run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
features=()
if [ "${1:-}" = "--features" ]; then
  features=(--features "$2")
  shift 2
fi
out="${1:-$repo/gpu-kit}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medfocus/target}"
mkdir -p "$out/wheels"

cargo build --release --locked --manifest-path "$repo/Cargo.toml" "${features[@]}"
strip -o "$out/medfocus" "$CARGO_TARGET_DIR/release/medfocus"
xz -T0 -9 -f "$out/medfocus"

# open_clip and what it imports beyond PyTorch (ftfy, regex, wcwidth, huggingface_hub's tree is
# on such machines with transformers); binary wheels for CPython 3.12 on x86-64 Linux.
python3 -m pip download --quiet --dest "$out/wheels" --only-binary=:all: \
  --python-version 3.12 --platform manylinux2014_x86_64 --implementation cp --no-deps \
  open_clip_torch ftfy regex wcwidth

(cd "$out" && apt-get download libvulkan1 >/dev/null 2>&1) \
  || echo "gpu-kit: no libvulkan1 .deb downloaded (apt-get download failed); the GPU machine must have libvulkan.so.1"

du -sh "$out"/* | sed 's/^/gpu-kit: /'
