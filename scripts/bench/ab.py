#!/usr/bin/env python3
"""Two (or more) builds of MedFocus against each other on this machine: the same `medfocus bench`
work, each binary in its own processes, alternating round after round (a machine that slows down
over the run slows every side alike), and a table of the per-round medians' ranges.

    cp "$CARGO_TARGET_DIR/release/medfocus" /tmp/medfocus-a     # build A
    # ... change a feature or the code, build again ...
    python3 scripts/bench/ab.py /tmp/medfocus-a "$CARGO_TARGET_DIR/release/medfocus" --rounds 2

Needs the `large` random-weight checkpoints (`gen_clip.py large`, `gen_sam2.py large`); SAM 2 also
runs from `--sam2-int8` (a burnpack from `medfocus weights export-sam2 --int8 block-32`) when given.
"""

import argparse
import collections
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(binary, args):
    done = subprocess.run([binary, "--device", "cpu", "bench", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{binary} bench {' '.join(args)} failed:\n{done.stderr}")
    return [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines()
            if line.startswith("medfocus-bench ")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clip", type=Path, default=REPO / "fixtures-large/clip/openai-vit-b-16")
    parser.add_argument("--sam2", type=Path, default=REPO / "fixtures-large/sam2/sam2.1-hiera-tiny.pt")
    parser.add_argument("--sam2-int8", type=Path)
    parser.add_argument("--grid", type=int, default=8, help="the automatic grid's points per side")
    args = parser.parse_args()
    medians = collections.defaultdict(list)  # (work, binary) -> per-round medians
    for round_index in range(args.rounds):
        for binary in args.binaries:
            print(f"round {round_index + 1}: {binary}", file=sys.stderr, flush=True)
            figures = run(binary, ["--clip", str(args.clip), "--batch", "1", "--runs", "5"])
            for weights in [args.sam2] + ([args.sam2_int8] if args.sam2_int8 else []):
                found = run(binary, ["--sam2", str(weights), "--runs", "2", "--warmup", "0",
                                     "--grid", str(args.grid)])
                for figure in found:
                    if weights != args.sam2:
                        figure["work"] += " (int8 burnpack)"
                figures += found
            for figure in figures:
                if not figure["work"].endswith((".first", ".load")):
                    medians[(figure["work"], binary)].append(statistics.median(figure["ms"]))
    works = list(dict.fromkeys(work for work, _ in medians))
    print("| work | " + " | ".join(args.binaries) + " |")
    print("|---|" + "---|" * len(args.binaries))
    for work in works:
        cells = []
        for binary in args.binaries:
            values = medians[(work, binary)]
            cells.append(f"{min(values):.0f}–{max(values):.0f} ms")
        print(f"| {work} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
