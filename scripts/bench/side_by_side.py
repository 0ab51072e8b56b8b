#!/usr/bin/env python3
"""MedFocus against PyTorch eager and ONNX Runtime on this machine, side by side, in one run.

    python scripts/bench/side_by_side.py                 # CPU, 3 rounds
    python scripts/bench/side_by_side.py --rounds 5 --threads 2 --json /tmp/side-by-side.json
    python scripts/bench/side_by_side.py --device gpu    # PyTorch CUDA against MedFocus on wgpu

Needs the reference venv (torch, open-clip-torch, sam2, onnx, onnxruntime; see the README) and
the real-size random-weight checkpoints (`gen_clip.py large`, `gen_sam2.py large`). Every side
runs in its own process — PyTorch's and ONNX Runtime's OpenMP threads spin after their work and
would slow whatever shares their process — and the sides alternate, round after round, so a
machine that slows down over the run slows every side alike. Same checkpoints, same 512×512
image (the benches' synthetic pattern), same work:

- CLIP ViT-B/16 image tower, one preprocessed image (`encode_image`);
- CLIP text tower, five prompts (`encode_text`, tokenized outside the timing);
- SAM 2.1 tiny `set_image` of the 512×512 image (resized to 1024², the image encoder and the
  feature projections); ONNX Runtime: the exported image encoder alone;
- one point prompt, three masks, at the image's size (`predict(..., multimask_output=True)`);
- the automatic mask generator from the image, 16×16 points, thresholds 0 (one run per round).

Each figure is the median of a round's timed runs after a warm-up; the table gives the range of
those medians over the rounds and the ratio MedFocus / PyTorch of their medians (< 1: MedFocus
faster). The MedFocus side is the release binary's `medfocus bench` (built once before the first
round; MEDFOCUS_FEATURES adds Cargo features), CLIP and SAM 2 each in their own process; with
`--sam2-weights int8` or `both`, SAM 2 also with int8 weights (block-32, as the page ships them).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIP_DIR = REPO / "fixtures-large" / "clip" / "openai-vit-b-16"
SAM2_CHECKPOINT = REPO / "fixtures-large" / "sam2" / "sam2.1-hiera-tiny.pt"
SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
ONNX_DIR = REPO / "fixtures-large" / "onnx"
PROMPTS = [f"a medical image showing {c}." for c in
           ("glioma", "meningioma", "no tumor", "pituitary tumor", "normal")]

# The table's rows, in the order printed: the work's name in the figures, and its title.
ROWS = [
    ("clip.image", "CLIP ViT-B/16 image tower, 1 image"),
    ("clip.text_5_prompts", "CLIP text tower, 5 prompts"),
    ("sam2.embed", "SAM 2.1 tiny `set_image` (1024²)"),
    ("sam2.point_prompt", "SAM 2.1 tiny point prompt, 3 masks"),
    ("sam2.automatic_16", "automatic masks, 16×16 grid, thresholds 0"),
    ("clip.image_attention", "CLIP image tower, attention focus (MedFocus only)"),
    ("sam2.embed.int8", "SAM 2.1 tiny `set_image`, int8 weights (MedFocus only)"),
    ("sam2.point_prompt.int8", "SAM 2.1 tiny point prompt, int8 weights (MedFocus only)"),
]


def bench_image():
    """The benches' synthetic 512×512 RGB image: byte i is i mod 251."""
    import numpy as np
    return (np.arange(512 * 512 * 3) % 251).astype(np.uint8).reshape(512, 512, 3)


def timed(warmup, runs, work, sync=lambda: None):
    times = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        work()
        sync()
        if index >= warmup:
            times.append((time.perf_counter() - started) * 1e3)
    return times


def emit(work, variant, backend, ms):
    print("medfocus-bench " + json.dumps(
        {"work": work, "variant": variant, "backend": backend, "ms": ms}), flush=True)


# ---------------------------------------------------------------- the reference sides (workers)

def load_open_clip():
    import open_clip
    import torch
    cfg = json.loads((CLIP_DIR / "open_clip_config.json").read_text())["model_cfg"]
    model = open_clip.model.CLIP(**cfg).eval()  # the config says quick_gelu, as OpenAI's does
    state = torch.load(CLIP_DIR / "open_clip_pytorch_model.bin", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    preprocess = open_clip.transform.image_transform(
        cfg["vision_cfg"]["image_size"], is_train=False)
    return model, preprocess


def clip_input(preprocess):
    from PIL import Image
    return preprocess(Image.fromarray(bench_image()))[None]


def worker_torch(args):
    import torch
    import open_clip
    torch.set_num_threads(args.threads)
    cuda = args.device == "gpu"
    device = torch.device("cuda" if cuda else "cpu")
    backend = f"PyTorch {torch.__version__} eager, " + (
        torch.cuda.get_device_name(0) if cuda else f"{args.threads} threads")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    if "clip" in args.models:
        model, preprocess = load_open_clip()
        model = model.to(device)
        image = clip_input(preprocess).to(device)
        tokens = open_clip.tokenizer.tokenize(PROMPTS).to(device)
        with torch.inference_mode():
            emit("clip.image", "openai-vit-b-16", backend,
                 timed(1, args.runs_clip, lambda: model.encode_image(image), sync))
            emit("clip.text_5_prompts", "openai-vit-b-16", backend,
                 timed(1, args.runs_clip, lambda: model.encode_text(tokens), sync))
        del model

    if "sam2" in args.models:
        import numpy as np
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        model = build_sam2(SAM2_CONFIG, str(SAM2_CHECKPOINT), device=str(device), mode="eval")
        predictor = SAM2ImagePredictor(model)
        image = bench_image()
        with torch.inference_mode():
            emit("sam2.embed", "f32", backend,
                 timed(1, args.runs_sam2, lambda: predictor.set_image(image), sync))
            predictor.set_image(image)
            point = np.array([[256.0, 256.0]])
            label = np.array([1])
            emit("sam2.point_prompt", "f32", backend, timed(1, args.runs_sam2, lambda: predictor.predict(
                point_coords=point, point_labels=label, multimask_output=True), sync))
            generator = SAM2AutomaticMaskGenerator(
                model, points_per_side=16, pred_iou_thresh=0.0, stability_score_thresh=0.0)
            emit("sam2.automatic_16", "f32", backend,
                 timed(0, 1, lambda: generator.generate(image), sync))


def export_onnx():
    """ONNX exports of the same towers, written once beside the checkpoints."""
    import torch
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    clip_path = ONNX_DIR / "openai-vit-b-16.visual.onnx"
    if not clip_path.exists():
        model, preprocess = load_open_clip()
        torch.onnx.export(model.visual, clip_input(preprocess), str(clip_path), dynamo=False,
                          opset_version=17, input_names=["pixels"], output_names=["embedding"])
    sam2_path = ONNX_DIR / "sam2.1-hiera-tiny.image_encoder.onnx"
    if not sam2_path.exists():
        from sam2.build_sam import build_sam2

        class Encoder(torch.nn.Module):
            """The image encoder (Hiera + FPN neck), as the usual SAM 2 ONNX exports cut it."""

            def __init__(self, sam):
                super().__init__()
                self.encoder = sam.image_encoder

            def forward(self, pixels):
                out = self.encoder(pixels)
                return tuple(out["backbone_fpn"])

        model = build_sam2(SAM2_CONFIG, str(SAM2_CHECKPOINT), device="cpu", mode="eval")
        torch.onnx.export(Encoder(model).eval(), torch.randn(1, 3, 1024, 1024), str(sam2_path),
                          dynamo=False, opset_version=17, input_names=["pixels"])
    return clip_path, sam2_path


def worker_onnx(args):
    import numpy as np
    import onnxruntime as ort
    clip_path, sam2_path = export_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    backend = f"ONNX Runtime {ort.__version__}, CPU, {args.threads} threads"
    if "clip" in args.models:
        _, preprocess = load_open_clip()
        session = ort.InferenceSession(str(clip_path), options, providers=["CPUExecutionProvider"])
        feed = {"pixels": clip_input(preprocess).numpy()}
        emit("clip.image", "openai-vit-b-16", backend,
             timed(1, args.runs_clip, lambda: session.run(None, feed)))
        del session
    if "sam2" in args.models:
        session = ort.InferenceSession(str(sam2_path), options, providers=["CPUExecutionProvider"])
        # The encoder alone; the image's resize and normalisation are left out (a few ms).
        feed = {"pixels": np.random.default_rng(0).standard_normal((1, 3, 1024, 1024), dtype=np.float32)}
        emit("sam2.embed", "image encoder alone", backend,
             timed(1, args.runs_sam2, lambda: session.run(None, feed)))


# ---------------------------------------------------------------- MedFocus (`medfocus bench`)

def build_medfocus():
    """Builds the release binary once (its features, if any, from MEDFOCUS_FEATURES); returns it."""
    command = ["cargo", "build", "--release", "--locked", "--message-format=json", "--bin", "medfocus"]
    if os.environ.get("MEDFOCUS_FEATURES"):
        command += ["--features", os.environ["MEDFOCUS_FEATURES"]]
    print("building: " + " ".join(command), file=sys.stderr, flush=True)
    out = subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "medfocus":
            return message["executable"]
    sys.exit("cargo built no medfocus executable")


def sam2_weights(binary, args):
    """SAM 2's weights for each `--sam2-weights` choice: the checkpoint itself for f32, a burnpack
    with int8 weights (one scale per block of 32, as the page ships them) written once for int8."""
    chosen = {"f32": ["f32"], "int8": ["int8"], "both": ["f32", "int8"]}[args.sam2_weights]
    weights = {}
    for name in chosen:
        if name == "f32":
            weights[name] = SAM2_CHECKPOINT
            continue
        path = SAM2_CHECKPOINT.with_suffix(".int8-block-32.bpk")
        if not path.exists():
            subprocess.run([binary, "weights", "export-sam2", str(SAM2_CHECKPOINT), "--int8", "block-32",
                            "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
        weights[name] = path
    return weights


def run_medfocus(binary, weights, args):
    """The one binary's `bench` subcommand: CLIP (one image, the attention focus, the text tower)
    and SAM 2 (`set_image`, the point prompt, the 16×16 automatic grid), each in its own process."""
    command = [binary, "--device", args.device, "bench", "--warmup", "1", "--batch", "1"]
    lines = []
    if "clip" in args.models:
        lines += run_side(command + ["--clip", str(CLIP_DIR), "--runs", str(args.runs_clip)])
    if "sam2" in args.models:
        for name, path in weights.items():
            found = run_side(command + ["--sam2", str(path), "--runs", str(args.runs_sam2), "--grid", "16"])
            for figure in found:
                figure["variant"] = name
                if name != "f32":
                    figure["work"] += f".{name}"
            lines += found
    return lines


# ---------------------------------------------------------------- the driver

def run_side(command, env=None):
    """One side in its own process; its `medfocus-bench` lines, parsed."""
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit status {done.returncode}")
    found = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines()
             if line.startswith("medfocus-bench ")]
    for figure in found:
        print(f"  {figure['backend']}: {figure['work']} ({figure['variant']}) "
              f"{statistics.median(figure['ms']):.1f} ms", file=sys.stderr, flush=True)
    return found


def side_of(backend):
    if backend.startswith("PyTorch"):
        return "pytorch"
    if backend.startswith("ONNX Runtime"):
        return "onnx"
    return "medfocus"


def fmt_ms(values):
    def one(ms):
        return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"
    low, high = min(values), max(values)
    return one(low) if one(low) == one(high) else f"{one(low)}–{one(high)}"


def table(rounds):
    """Markdown: one row per work, the range of the per-round medians per side, and the ratio."""
    per = {}  # (work, side) -> [per-round medians]
    labels = {}
    for figures in rounds:
        for figure in figures:
            side = side_of(figure["backend"])
            per.setdefault((figure["work"], side), []).append(statistics.median(figure["ms"]))
            labels[side] = figure["backend"]
    head = "| work | PyTorch eager | ONNX Runtime | MedFocus | MedFocus / PyTorch |"
    lines = [head, "|---|---|---|---|---|"]
    for work, title in ROWS:
        cells = [fmt_ms(per[(work, s)]) if (work, s) in per else "—"
                 for s in ("pytorch", "onnx", "medfocus")]
        ratio = "—"
        if (work, "pytorch") in per and (work, "medfocus") in per:
            value = statistics.median(per[(work, "medfocus")]) / statistics.median(per[(work, "pytorch")])
            ratio = f"{value:.2f}× ({'faster' if value < 1 else 'slower'})"
        if any(cell != "—" for cell in cells):
            lines.append(f"| {title} | {' | '.join(cells)} | {ratio} |")
    sides = "; ".join(f"{side}: {name}" for side, name in sorted(labels.items()))
    return "\n".join(lines), sides


def machine():
    """The CPU model and which vector instructions it has: PyTorch, ONNX Runtime and MedFocus's
    matmuls (gemm) and element-wise kernels (macerator) all pick AVX-512 at run time where the CPU
    has it, else AVX2 + FMA."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vector = "AVX-512 (avx512f)" if "avx512f" in flags else "AVX2 + FMA, no AVX-512" if "avx2" in flags \
        else "no AVX2"
    return f"{model or platform.processor()}, {vector}, {os.cpu_count()} logical cores, {platform.system()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch's and ONNX Runtime's threads (MedFocus uses every core)")
    parser.add_argument("--models", default="clip,sam2", help="clip, sam2 or both (comma-separated)")
    parser.add_argument("--sides", default="pytorch,onnx,medfocus")
    parser.add_argument("--runs-clip", type=int, default=5)
    parser.add_argument("--runs-sam2", type=int, default=3)
    parser.add_argument("--sam2-weights", choices=("f32", "int8", "both"), default="f32")
    parser.add_argument("--json", type=Path, help="also write every timing here")
    parser.add_argument("--worker", choices=("torch", "onnx", "export"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.models = set(args.models.split(","))
    sides = args.sides.split(",")

    if args.worker == "torch":
        return worker_torch(args)
    if args.worker == "onnx":
        return worker_onnx(args)
    if args.worker == "export":
        export_onnx()
        return None

    missing = [p for p in (CLIP_DIR, SAM2_CHECKPOINT) if not p.exists()]
    if missing:
        sys.exit(f"{missing[0]} is missing: run `python scripts/reference/gen_clip.py large` and "
                 "`python scripts/reference/gen_sam2.py large` first")
    if args.device == "gpu" and "onnx" in sides:
        sides.remove("onnx")  # onnxruntime from PyPI is CPU-only
    binary = build_medfocus() if "medfocus" in sides else None
    weights = sam2_weights(binary, args) if binary and "sam2" in args.models else {}
    if "onnx" in sides:
        print("exporting the ONNX towers (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--worker", "export"], check=True)
    worker = [sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
              "--models", ",".join(sorted(args.models)), "--runs-clip", str(args.runs_clip),
              "--runs-sam2", str(args.runs_sam2)]
    started = datetime.datetime.now(datetime.timezone.utc)
    rounds = []
    for round_index in range(args.rounds):
        print(f"round {round_index + 1} of {args.rounds}", file=sys.stderr, flush=True)
        figures = []
        for side in sides:
            if side == "pytorch":
                figures += run_side(worker + ["--worker", "torch"])
            elif side == "onnx":
                figures += run_side(worker + ["--worker", "onnx"])
            elif side == "medfocus":
                figures += run_medfocus(binary, weights, args)
            else:
                sys.exit(f"unknown side {side!r}")
        rounds.append(figures)

    markdown, names = table(rounds)
    command = "python scripts/bench/side_by_side.py " + " ".join(sys.argv[1:])
    print(f"\n{started:%Y-%m-%d}, {machine()}; {args.rounds} rounds, each side in its own process, "
          f"alternating; `{command.strip()}`")
    print(f"sides: {names}\n")
    print(markdown)
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(), "machine": machine(), "command": command.strip(),
            "rounds": rounds}, indent=1) + "\n")


if __name__ == "__main__":
    main()
