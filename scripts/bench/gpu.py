#!/usr/bin/env python3
"""MedFocus on this machine's GPU against its CPU backend (and PyTorch, when it is here): parity
first, then speed, as one table (and JSON). Issue 35.

    python3 scripts/bench/gpu.py --smoke                  # tiny fixtures; any machine, lavapipe will do
    python3 scripts/bench/gpu.py --clip DIR --sam2 PT     # real sizes (checkpoints made beforehand)
    python3 scripts/bench/gpu.py ... --medfocus ./medfocus --json out.json

Each side is `medfocus --device cpu|gpu bench … --save DIR` in its own process: the same
synthetic 512×512 image, CLIP's image and text towers (and the attention focus), SAM 2's image
embedding, a point prompt and the automatic masks; the outputs as `.npy`. Each head kind (linear
probe, CoOp, the fine-tune; tiny CLIP, the brain-MRI images) is also trained on both devices and
their predictions compared (≤ 1e-4). Parity compares the
GPU's outputs with the CPU backend's (the CPU parity tests' bounds: CLIP ≤ 1e-4 on the unit
embeddings, SAM 2's point masks IoU ≥ 0.99); a speed row is printed only when its parity row
passed. With PyTorch and open_clip importable, CLIP's towers are also compared with open_clip on
CUDA (or its CPU) and timed there. Needs only Python's standard library otherwise.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CLIP_BOUND = 1e-4
MASK_IOU_BOUND = 0.99


def read_npy(path: Path) -> tuple[list[int], array]:
    """A little-endian float32 `.npy` as (shape, values), without NumPy."""
    data = path.read_bytes()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    header_length = struct.unpack("<H" if major == 1 else "<I", data[8:10] if major == 1 else data[8:12])[0]
    start = 10 if major == 1 else 12
    header = ast.literal_eval(data[start:start + header_length].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: {header['descr']}, expected little-endian float32 in C order")
    values = array("f")
    values.frombytes(data[start + header_length:])
    return list(header["shape"]), values


def unit_rows(values: array, width: int) -> list[list[float]]:
    rows = [values[i:i + width] for i in range(0, len(values), width)]
    return [[v / (math.sqrt(sum(x * x for x in row)) or 1.0) for v in row] for row in rows]


def max_difference(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for row_a, row_b in zip(a, b, strict=True) for x, y in zip(row_a, row_b, strict=True))


def mask_ious(a: array, b: array, count: int) -> list[float]:
    size = len(a) // count
    ious = []
    for index in range(count):
        left, right = a[index * size:(index + 1) * size], b[index * size:(index + 1) * size]
        both = sum(1 for x, y in zip(left, right, strict=True) if x > 0.5 and y > 0.5)
        either = sum(1 for x, y in zip(left, right, strict=True) if x > 0.5 or y > 0.5)
        ious.append(1.0 if either == 0 else both / either)
    return ious


def run_side(binary: str, device: str, models: list[str], settings: list[str], save: Path) -> dict:
    """One `medfocus bench` process; its figures by work, and how the device was chosen."""
    command = [binary, "--device", device, "bench", *models, *settings, "--save", str(save)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    figures, backend = {}, None
    for line in done.stdout.splitlines():
        if line.startswith("medfocus-bench "):
            figure = json.loads(line[len("medfocus-bench "):])
            figures[figure["work"]] = figure
            backend = figure["backend"]
    return {"backend": backend, "figures": figures}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def parity(cpu: Path, gpu: Path, has_clip: bool, has_sam2: bool) -> list[dict]:
    """GPU outputs against the CPU backend's, each with its bound."""
    rows = []
    if has_clip:
        for name in ("clip.image", "clip.image_attention", "clip.text"):
            (shape, a), (_, b) = read_npy(cpu / f"{name}.npy"), read_npy(gpu / f"{name}.npy")
            difference = max_difference(unit_rows(a, shape[1]), unit_rows(b, shape[1]))
            rows.append({"check": f"{name}: max |Δ| of unit embeddings", "value": difference,
                         "bound": CLIP_BOUND, "passed": difference <= CLIP_BOUND})
    if has_sam2:
        (shape, a), (_, b) = read_npy(cpu / "sam2.point_masks.npy"), read_npy(gpu / "sam2.point_masks.npy")
        ious = mask_ious(a, b, shape[0])
        rows.append({"check": "sam2 point prompt: mask IoU (worst of 3)", "value": min(ious),
                     "bound": MASK_IOU_BOUND, "passed": min(ious) >= MASK_IOU_BOUND})
        size = len(a) // shape[0]
        smallest = min(sum(1 for v in a[i * size:(i + 1) * size] if v > 0.5) for i in range(shape[0]))
        # An IoU of two empty masks is 1: say how much the masks hold.
        rows.append({"check": "sam2 point prompt: pixels inside the smallest mask, CPU (reported)",
                     "value": smallest, "bound": None, "passed": True})
        (_, a), (_, b) = read_npy(cpu / "sam2.image_embed.npy"), read_npy(gpu / "sam2.image_embed.npy")
        scale = max(abs(v) for v in a) or 1.0
        difference = max(abs(x - y) for x, y in zip(a, b, strict=True)) / scale
        rows.append({"check": "sam2 image embedding: max |Δ| / max |value| (reported)", "value": difference,
                     "bound": None, "passed": True})
        (shape_a, a), (shape_b, _) = read_npy(cpu / "sam2.automatic.npy"), read_npy(gpu / "sam2.automatic.npy")
        rows.append({"check": "sam2 automatic masks: count on the GPU − on the CPU (reported)",
                     "value": shape_b[0] - shape_a[0], "bound": None, "passed": True})
    return rows


def torch_reference(clip_dir: Path, out: Path, runs: int) -> dict | None:
    """open_clip's towers on the same image and prompts, on CUDA when there is one; None without
    PyTorch and open_clip here."""
    script = REPO / "scripts" / "bench" / "gpu_torch.py"
    python = os.environ.get("MEDFOCUS_TORCH_PYTHON", sys.executable)
    done = subprocess.run([python, str(script), str(clip_dir), str(out), str(runs)],
                          capture_output=True, text=True, check=False)
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise SystemExit(f"the PyTorch side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


HEAD_KINDS = ("linear-probe", "coop", "finetune")
HEAD_BOUND = 1e-4


def head_parity(binary: str, data: Path, work: Path, epochs: int) -> list[dict]:
    """Each head kind trained on wgpu and on the CPU backend from the same images, the tiny
    CLIP: both heads then predict on the CPU backend, and their probabilities must agree."""
    model = FIXTURES / "clip" / "openclip-tiny"
    images = sorted(str(path) for path in data.rglob("*.jpg"))[:6]
    rows = []
    for kind in HEAD_KINDS:
        probabilities = {}
        for device in ("cpu", "gpu"):
            head = work / f"{device}-{kind}.mfh"
            command = [binary, "--device", device, "train", "--data", str(data), "--model", str(model),
                       "--head", kind, "--epochs", str(epochs), "--no-cache", "--fresh", "--out", str(head)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            predicted = subprocess.run(
                [binary, "--device", "cpu", "predict", "--head", str(head), "--model", str(model),
                 "--json", *images], capture_output=True, text=True, check=True)
            probabilities[device] = [json.loads(line)["probabilities"]
                                     for line in predicted.stdout.splitlines() if line.strip()]
        difference = max(abs(a - b) for row_a, row_b in zip(probabilities["cpu"], probabilities["gpu"], strict=True)
                         for a, b in zip(row_a, row_b, strict=True))
        rows.append({"check": f"{kind} trained on the GPU vs on the CPU: max |Δ probability|",
                     "value": difference, "bound": HEAD_BOUND, "passed": difference <= HEAD_BOUND})
    return rows


def prove(binary: str, clip_dir: Path, work: Path, runs: int) -> dict:
    """`medfocus devices --prove`: the proof `--device auto` needs, and what auto then picks."""
    proofs = work / "device-proofs.json"
    env = dict(os.environ, MEDFOCUS_DEVICE_PROOFS=str(proofs))
    done = subprocess.run([binary, "devices", "--prove", str(clip_dir), "--runs", str(runs)],
                          capture_output=True, text=True, check=False, env=env)
    if not proofs.is_file():
        sys.exit(f"devices --prove failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    proof = json.loads(proofs.read_text())["proofs"][-1]
    auto = [line for line in done.stdout.splitlines() if line.startswith(("--device auto now", "why:"))]
    return {"proof": proof, "auto": auto, "exit": done.returncode}


def torch_parity(cpu: Path, reference: dict) -> list[dict]:
    """open_clip's embeddings against the CPU backend's: the parity tests' bound."""
    rows = []
    for name, key in (("clip.image", "image"), ("clip.text", "text")):
        shape, values = read_npy(cpu / f"{name}.npy")
        ours = unit_rows(values, shape[1])
        theirs = [[v / (math.sqrt(sum(x * x for x in row)) or 1.0) for v in row] for row in reference[key]]
        difference = max_difference(ours, theirs)
        rows.append({"check": f"{name}: MedFocus CPU vs PyTorch ({reference['device']})", "value": difference,
                     "bound": CLIP_BOUND, "passed": difference <= CLIP_BOUND})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny fixtures, few runs")
    parser.add_argument("--clip", type=Path, help="a CLIP model folder")
    parser.add_argument("--sam2", type=Path, help="SAM 2 weights")
    parser.add_argument("--sam2-config", type=Path)
    parser.add_argument("--medfocus", default=shutil.which("medfocus") or str(REPO / "medfocus"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--heads-data", type=Path,
                        default=Path(os.environ.get("MEDFOCUS_DATA", REPO.parent / "shared" / "data")) / "brain-mri",
                        help="images to train each head kind on, on both devices (skipped when absent)")
    args = parser.parse_args()
    if args.smoke:
        args.clip = args.clip or FIXTURES / "clip" / "openclip-tiny"
        args.sam2 = args.sam2 or FIXTURES / "sam2" / "sam2.1-tiny-small.pt"
        args.sam2_config = args.sam2_config or FIXTURES / "sam2" / "sam2.1-tiny-small.config.json"
        args.runs, args.batch = min(args.runs, 2), min(args.batch, 4)
    if not args.clip and not args.sam2:
        parser.error("give --clip and/or --sam2 (or --smoke)")
    models = []
    if args.clip:
        models += ["--clip", str(args.clip)]
    if args.sam2:
        models += ["--sam2", str(args.sam2)]
        if args.sam2_config:
            models += ["--sam2-config", str(args.sam2_config)]
    settings = ["--runs", str(args.runs), "--batch", str(args.batch), "--grid", "4" if args.smoke else "16"]

    work = Path(tempfile.mkdtemp(prefix="medfocus-gpu-"))
    try:
        sides = {device: run_side(args.medfocus, device, models, settings, work / device)
                 for device in ("cpu", "gpu")}
        checks = parity(work / "cpu", work / "gpu", bool(args.clip), bool(args.sam2))
        reference = torch_reference(args.clip, work / "torch", args.runs) if args.clip else None
        if reference:
            checks += torch_parity(work / "cpu", reference)
        proven = prove(args.medfocus, args.clip, work, args.runs) if args.clip else None
        if args.heads_data.is_dir():
            checks += head_parity(args.medfocus, args.heads_data, work, 10 if args.smoke else 50)
        else:
            print(f"(no {args.heads_data}: heads not trained on the two devices)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    passed = all(check["passed"] for check in checks)
    print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    for device, side in sides.items():
        print(f"{device}: {side['backend']}")
    print("\nParity (the GPU against the CPU backend, same binary, same inputs; and open_clip)")
    for check in checks:
        bound = "" if check["bound"] is None else f" (bound {check['bound']})"
        verdict = "ok" if check["passed"] else "FAILED"
        print(f"  {check['check']}: {check['value']:.3g}{bound} {verdict}")
    print("\nSpeed, median ms (first run, kernels compiled, apart)")
    print(f"  {'work':28} {'CPU backend':>12} {'GPU':>12}" + (f" {'PyTorch':>12}" if reference else ""))
    works = [work for work in sides["cpu"]["figures"] if not work.endswith(".load")]
    for name in works:
        cpu = median(sides["cpu"]["figures"][name]["ms"])
        gpu_figure = sides["gpu"]["figures"].get(name)
        gpu = "—" if gpu_figure is None or not passed else f"{median(gpu_figure['ms']):.1f}"
        torch = ""
        if reference and name in reference.get("figures", {}):
            torch = f" {median(reference['figures'][name]):>12.1f}"
        print(f"  {name:28} {cpu:>12.1f} {gpu:>12}{torch}")
    if not passed:
        print("\nGPU rows withheld: a parity check failed.")
    if proven:
        proof = proven["proof"]
        print(f"\n--device auto (build {proof['build']}): `devices --prove` measured {proof['work']}: "
              f"max |Δ| {proof['max_abs_diff']:.2g} (bound {proof['bound']}), GPU {proof['gpu_ms']:.1f} ms "
              f"against CPU backend {proof['cpu_ms']:.1f} ms, first GPU run {proof['gpu_first_ms']:.0f} ms")
        for line in proven["auto"]:
            print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps({"sides": sides, "parity": checks, "torch": reference,
                                         "device_proof": proven}, indent=2))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
