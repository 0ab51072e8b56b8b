#!/usr/bin/env python3
"""open_clip's side of `gpu.py`: the same synthetic image and prompts through the same
checkpoint, on CUDA when there is one (TF32 off, so fp32 is fp32), else the CPU; prints one JSON
line with the embeddings and the timings. Exit status 3: PyTorch or open_clip is not here.

    python3 scripts/bench/gpu_torch.py CLIP_DIR OUT_DIR RUNS
"""

import json
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import open_clip
    import torch
    from PIL import Image
except ImportError:
    sys.exit(3)

PROMPTS = [f"a medical image showing {c}." for c in
           ("glioma", "meningioma", "no tumor", "pituitary tumor", "normal")]


def main():
    folder, runs = Path(sys.argv[1]), int(sys.argv[3])
    cfg = json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
    model = open_clip.model.CLIP(**cfg).eval()
    weights = folder / "open_clip_pytorch_model.bin"
    if weights.exists():
        state = torch.load(weights, map_location="cpu", weights_only=True)
    else:
        from safetensors.torch import load_file
        state = load_file(str(folder / "open_clip_model.safetensors"))
    model.load_state_dict(state)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if cuda else "cpu")
    model = model.to(device)
    preprocess = open_clip.transform.image_transform(cfg["vision_cfg"]["image_size"], is_train=False)
    pixels = (np.arange(512 * 512 * 3) % 251).astype(np.uint8).reshape(512, 512, 3)
    image = preprocess(Image.fromarray(pixels))[None].to(device)
    tokens = open_clip.tokenizer.tokenize(PROMPTS, context_length=cfg["text_cfg"].get("context_length", 77)).to(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed(work):
        times = []
        for index in range(runs + 1):
            started = time.perf_counter()
            work()
            sync()
            if index:
                times.append((time.perf_counter() - started) * 1e3)
        return times

    with torch.inference_mode():
        image_embedding = model.encode_image(image).float().cpu().numpy()
        text_embedding = model.encode_text(tokens).float().cpu().numpy()
        figures = {"clip.image": timed(lambda: model.encode_image(image)),
                   "clip.text_5_prompts": timed(lambda: model.encode_text(tokens))}
    print(json.dumps({
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "image": image_embedding.tolist(),
        "text": text_embedding.tolist(),
        "figures": figures,
    }))


if __name__ == "__main__":
    main()
