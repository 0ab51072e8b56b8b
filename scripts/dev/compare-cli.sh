#!/usr/bin/env bash
# Behaviour check for refactors: runs the same `medfocus` commands (classify with every focus,
# segment, train four heads, predict, check-int8) with two binaries on the committed fixtures and
# ../shared/data, and lists the outputs that differ (JSON compared line by line with the output
# folder's path and the `region` report taken out; head files, masks and overlays byte for byte).
#
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --bin medfocus) && cp "$CARGO_TARGET_DIR/debug/medfocus" /tmp/medfocus-old
#   cargo build --bin medfocus && scripts/dev/compare-cli.sh /tmp/medfocus-old "$CARGO_TARGET_DIR/debug/medfocus"
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${MEDFOCUS_DATA:-$repo/../shared/data}"
old_bin="$1" new_bin="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_all() { # run_all BINARY OUTDIR
  local m="$1 --device cpu" out="$2"
  mkdir -p "$out"
  local clip=$repo/tests/fixtures/clip/openclip-tiny
  local sam=$repo/tests/fixtures/sam2/sam2.1-tiny-small.pt cfg=$repo/tests/fixtures/sam2/sam2.1-tiny-small.config.json
  local mri=$data/brain-mri/glioma/Te-gl_0010.jpg
  local imgs="$mri $data/brain-mri/notumor/Te-no_0021.jpg $data/chest-xray/NORMAL/NORMAL2-IM-1427-0001.jpeg"
  $m classify --model $clip --classes "glioma,meningioma,no tumor" --json $imgs > $out/classify-none.json 2>&1
  for f in overlay blur crop binary grey attention; do
    $m classify --model $clip --classes "glioma,no tumor" --box 20,20,150,150 --focus $f --json $mri > $out/classify-$f.json 2>&1
  done
  $m classify --model $clip --classes "glioma,no tumor" --box 20,20,150,150 --focus attention --strength 3 --last-layers 1 --all-tokens --json $mri > $out/classify-attention-knobs.json 2>&1
  $m segment --model $sam --config $cfg --point 120,100 --out $out/seg-point.png --json $mri > $out/seg-point.json 2>&1
  $m segment --model $sam --config $cfg --box 30,30,200,200 --background 10,10 --single --out $out/seg-box.png --json $mri > $out/seg-box.json 2>&1
  $m segment --model $sam --config $cfg --auto --points-per-side 4 --out $out/seg-auto.png --json $mri > $out/seg-auto.json 2>&1
  $m classify --model $clip --classes "glioma,no tumor" --mask $out/seg-point.png --focus grey --json $mri > $out/classify-mask.json 2>&1
  $m train --data $data/brain-mri --model $clip --head tip-adapter-f --out $out/brain-tip.mfh --no-cache --json > $out/train-tip.json 2>&1
  $m train --data $data/chest-xray --model $clip --head finetune --finetune-blocks 1 --out $out/chest-ft.mfh --no-cache --json > $out/train-ft.json 2>&1
  $m train --data $data/brain-mri --model $clip --head tip-adapter --alpha-cache 2 --beta-cache 3 --out $out/brain-tip-fixed.mfh --no-cache --json > $out/train-tip-fixed.json 2>&1
  # `--prompt` is the name both binaries know for the focus while training.
  $m train --data $data/chest-xray --model $clip --head linear-probe --prompt overlay --sam2 $sam --sam2-config $cfg --points-per-side 4 --out $out/chest-lp-sam2.mfh --no-cache --json > $out/train-lp-sam2.json 2>&1
  for head in brain-tip chest-ft brain-tip-fixed; do
    $m predict --head $out/$head.mfh --model $clip --json $imgs > $out/predict-$head.json 2>&1
  done
  $m predict --head $out/chest-lp-sam2.mfh --model $clip --sam2 $sam --sam2-config $cfg --points-per-side 4 --json $imgs > $out/predict-lp-sam2.json 2>&1
  for head in brain-mri-tip-adapter-f chest-xray-finetune; do
    $m predict --head $repo/tests/fixtures/heads/$head.mfh --model $clip --json $imgs > $out/predict-fixture-$head.json 2>&1
  done
  $m weights check-int8 $sam --config $cfg --int8 tensor $data/chest-xray/NORMAL > $out/check-int8.txt 2>&1
}

run_all "$old_bin" "$work/old"
run_all "$new_bin" "$work/new"
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def lines(side, name):
    text = open(os.path.join(work, side, name), errors="replace").read().replace(os.path.join(work, side), "OUT")
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
            if isinstance(value, dict):
                value.pop("region", None)
            out.append(json.dumps(value, sort_keys=True))
        except ValueError:
            out.append(line)
    return out
differ = 0
for name in sorted(os.listdir(os.path.join(work, "old"))):
    if name.endswith((".json", ".txt")):
        same = lines("old", name) == lines("new", name)
    else:
        same = open(os.path.join(work, "old", name), "rb").read() == open(os.path.join(work, "new", name), "rb").read()
    if not same:
        differ += 1
        print("differs:", name)
print(f"{differ} of {len(os.listdir(os.path.join(work, 'old')))} outputs differ")
PY
