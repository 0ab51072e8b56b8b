#!/usr/bin/env bash
# Builds what a bare GPU machine needs to run `scripts/bench/gpu.sh` (issue 35), into gpu-kit/
# (ignored by git; carried beside the repository): the release `medfocus` binary, stripped and
# xz-compressed; wheels of open_clip and its small dependencies for the machine's Python (3.12,
# manylinux), which has PyTorch but not open_clip; Debian's Vulkan loader, for a machine whose
# driver ships no libvulkan.so.1. The checkpoints are made there, by the reference scripts.
#
#   ./scripts/bench/gpu-kit.sh [OUT_DIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$repo/gpu-kit}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medfocus/target}"
mkdir -p "$out/wheels"

cargo build --release --locked --manifest-path "$repo/Cargo.toml"
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
