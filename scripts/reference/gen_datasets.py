#!/usr/bin/env python3
"""Data-set fixtures written by the reference tools (NumPy), for the loader tests.

    pip install numpy
    python scripts/reference/gen_datasets.py    # -> tests/fixtures/eval/*.npz (committed, < 80 kB)

* `pneumoniamnist.npz` (+ `.json`: pixel sums the loader must reproduce): MedMNIST's layout exactly (`np.savez_compressed` of `train_images`
  uint8 [N, 28, 28], `train_labels` uint8 [N, 1], `val_*`, `test_*`), 2 classes, 8/4/6 images;
  the pixels are a seeded pattern per class, not real X-rays.
* `rgb-32.npz`: an RGB set at 32 px (`[N, 32, 32, 3]`), labels int64 [N], 3 classes, no val split.
* `lying-header.npz`: `train_images.npy` whose header claims 40 images while it holds 8.
* `multi-label.npz`: labels [N, 3] (ChestMNIST-style multi-label): not single-class.
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "eval"


def images(rng, labels, size, channels=None):
    base = np.linspace(0, 255, size * size, dtype=np.float64).reshape(size, size)
    out = []
    for label in labels:
        image = (base * (0.4 + 0.3 * label) + rng.normal(0, 8, (size, size))).clip(0, 255)
        if channels:
            image = np.stack([image, image[::-1], image.T], axis=-1)
        out.append(image.astype(np.uint8))
    return np.stack(out)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)

    splits = {"train": [0, 1] * 4, "val": [0, 1] * 2, "test": [0, 0, 0, 1, 1, 1]}
    arrays = {}
    for split, labels in splits.items():
        arrays[f"{split}_images"] = images(rng, labels, 28)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8).reshape(-1, 1)
    np.savez_compressed(OUT / "pneumoniamnist.npz", **arrays)
    facts = {
        "train_first_sum": int(arrays["train_images"][0].astype(np.int64).sum()),
        "test_last_sum": int(arrays["test_images"][-1].astype(np.int64).sum()),
        "test_last_pixel_0_5": int(arrays["test_images"][-1][0, 5]),
    }
    (OUT / "pneumoniamnist.json").write_text(json.dumps(facts, indent=1) + "\n")

    arrays = {}
    for split, labels in {"train": [0, 1, 2] * 3, "test": [0, 1, 2] * 2}.items():
        arrays[f"{split}_images"] = images(rng, labels, 32, channels=3)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.int64)
    np.savez_compressed(OUT / "rgb-32.npz", **arrays)

    # A header that lies about the shape: written by hand with NumPy's own header writer.
    honest = images(rng, [0, 1] * 4, 28)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": (40, 28, 28)}
    )
    buffer.write(honest.tobytes())
    labels = io.BytesIO()
    np.save(labels, np.zeros((40, 1), dtype=np.uint8))
    with zipfile.ZipFile(OUT / "lying-header.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train_images.npy", buffer.getvalue())
        archive.writestr("train_labels.npy", labels.getvalue())

    np.savez_compressed(
        OUT / "multi-label.npz",
        train_images=images(rng, [0, 1], 28),
        train_labels=np.array([[0, 1, 0], [1, 0, 1]], dtype=np.uint8),
    )
    for path in sorted(OUT.glob("*.npz")):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
