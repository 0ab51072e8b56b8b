#!/usr/bin/env bash
# Builds what a bare GPU machine needs to run `scripts/bench/gpu.sh` (issue 35), into gpu-kit/
# (ignored by git; carried beside the repository): the release `medfocus` binary, stripped and
# xz-compressed; wheels of open_clip and of Meta's sam2 and their small dependencies for the
# machine's Python (3.12, manylinux), which has PyTorch but neither; Debian's Vulkan loader, for a
# machine whose driver ships no libvulkan.so.1. The checkpoints are made there, by the reference
# scripts.
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

# Meta's sam2 (for `gen_sam2.py large`: SAM 2.1 tiny at its real size, made there) without its CUDA
# extension (SAM2_BUILD_CUDA=0: only the optional hole filling of masks uses it), and what it needs
# beyond PyTorch; a few are source-only on PyPI, so every one is built into a wheel here. Needs a
# Python with torch (the reference venv): sam2's setup imports it.
python="${MEDFOCUS_REFERENCE_PYTHON:-$HOME/.venvs/medfocus-ref/bin/python}"
if "$python" -c 'import torch' 2>/dev/null; then
  SAM2_BUILD_CUDA=0 "$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$out/wheels" \
    sam2==1.1.0 hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 iopath==0.1.10 portalocker
else
  echo "gpu-kit: no torch in $python: no sam2 wheel (the GPU run then times the tiny SAM 2 fixture)"
fi

(cd "$out" && apt-get download libvulkan1 >/dev/null 2>&1) \
  || echo "gpu-kit: no libvulkan1 .deb downloaded (apt-get download failed); the GPU machine must have libvulkan.so.1"

du -sh "$out"/* | sed 's/^/gpu-kit: /'
