#!/usr/bin/env bash
# The one command for a GPU machine (issue 35): unpacks gpu-kit/ (scripts/bench/gpu-kit.sh),
# makes the real-size random-weight checkpoints with the reference scripts, and runs
# scripts/bench/gpu.py: parity of wgpu against the CPU backend and open_clip on CUDA, then speed.
#
#   ./scripts/bench/gpu.sh            # on the GPU machine, from the repository root
#   ./scripts/bench/gpu.sh --smoke    # any machine: the tiny fixtures, the binary built here
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
work="${MEDFOCUS_GPU_WORK:-/tmp/medfocus-gpu}"
mkdir -p "$work"

if [ "${1:-}" = "--smoke" ]; then
  binary="${MEDFOCUS_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/medfocus/target}/debug/medfocus}"
  exec python3 scripts/bench/gpu.py --smoke --medfocus "$binary" --json "$work/gpu-smoke.json"
fi

kit="${MEDFOCUS_GPU_KIT:-$repo/gpu-kit}"
[ -d "$kit" ] || { echo "no $kit: build it first with scripts/bench/gpu-kit.sh" >&2; exit 2; }
xz -dc "$kit/medfocus.xz" > "$work/medfocus" && chmod +x "$work/medfocus"

# The Vulkan loader, when the driver's machine has none.
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  deb="$(ls "$kit"/libvulkan1_*.deb 2>/dev/null | head -n1 || true)"
  [ -n "$deb" ] || { echo "no libvulkan.so.1 here and no libvulkan1 .deb in the kit" >&2; exit 2; }
  dpkg -x "$deb" "$work/vulkan"
  export LD_LIBRARY_PATH="$work/vulkan/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
python3 -c 'import open_clip' 2>/dev/null \
  || python3 -m pip install --quiet --no-index --find-links "$kit/wheels" open_clip_torch ftfy regex wcwidth

# Real sizes, random weights: open_clip's ViT-B/16 (the same work as the published one);
# MEDFOCUS_GPU_CLIP names another model folder (trying the kit on a machine without a GPU).
clip="${MEDFOCUS_GPU_CLIP:-$repo/fixtures-large/clip/openai-vit-b-16}"
[ -d "$clip" ] || python3 - <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "scripts/reference")
import gen_clip, open_clip
out = gen_clip.REPO / "fixtures-large" / "clip"
cfg = json.loads((Path(open_clip.__file__).parent / "model_configs" / "ViT-B-16.json").read_text())
gen_clip.gen_open_clip(out, out / "reference", "openai-vit-b-16", cfg, quick_gelu=True, seed=11, formats=("bin",))
PY
# SAM 2.1 tiny at its real size, made by `gen_sam2.py large` with Meta's sam2 (from the kit's
# wheels); else the tiny test fixture: its parity holds as well, its timings are not SAM 2's.
sam2=(--sam2 "$repo/fixtures-large/sam2/sam2.1-hiera-tiny.pt")
if [ ! -f "${sam2[1]}" ] && ls "$kit"/wheels/sam2-*.whl >/dev/null 2>&1; then
  python3 -c 'import sam2' 2>/dev/null \
    || python3 -m pip install --quiet --no-index --find-links "$kit/wheels" sam2 \
    || echo "sam2 from the kit did not install: the tiny SAM 2 fixture is timed instead"
  python3 -c 'import sam2' 2>/dev/null && python3 scripts/reference/gen_sam2.py large \
    || echo "gen_sam2.py large failed: the tiny SAM 2 fixture is timed instead"
fi
[ -f "${sam2[1]}" ] || sam2=(--sam2 "$repo/tests/fixtures/sam2/sam2.1-tiny-small.pt"
  --sam2-config "$repo/tests/fixtures/sam2/sam2.1-tiny-small.config.json")
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' || true
"$work/medfocus" --device gpu devices --check
exec python3 scripts/bench/gpu.py --clip "$clip" "${sam2[@]}" --medfocus "$work/medfocus" \
  --json "$work/gpu.json" "$@"
