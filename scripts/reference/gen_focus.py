"""The visual prompts and the attention focus's bias, written out in NumPy from their definitions
(tests/focus_parity.rs compares MedFocus's `focus::prompt::apply` and
`focus::attention::{patch_weights, key_bias}` with them).

Written from the definitions (the README's `--focus` table), not from the Rust:
- overlay:  (1 - a) * pixel + a * colour, a = alpha * w inside, then alpha_out * (1 - w) outside,
            each step rounded half away from zero to 8 bits;
- blur:     a Gaussian of sigma (radius ceil(3 sigma), edges repeated), blended w * pixel +
            (1 - w) * blurred, computed here in float64;
- crop:     the box of pixels with w > 0.5, grown by round(margin * size) on each side;
- binary / grey: w * pixel + (1 - w) * fill (black, or CLIP's mean colour);
- attention: each patch of the model input (after resizing the short side to `size` and
            cropping the centre) takes the mean mask weight of the original pixels whose centres
            fall inside it; the key bias is 0 for the class token and strength * (w - 1) per patch.

Run: python scripts/reference/gen_focus.py  (NumPy only; writes tests/fixtures/focus/focus.json)
"""
import json
import math
import pathlib

import numpy as np

OPENAI_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "focus"


def round_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def to_u8(x):
    return np.clip(round_away(x), 0, 255).astype(np.uint8)


def overlay(image, w, inside, a_in, outside, a_out):
    w = w[..., None]
    tinted = to_u8((1 - a_in * w) * image + a_in * w * np.array(inside))
    return to_u8((1 - a_out * (1 - w)) * tinted + a_out * (1 - w) * np.array(outside))


def blur(image, w, sigma):
    radius = max(1, math.ceil(3 * sigma))
    xs = np.arange(-radius, radius + 1)
    kernel = np.exp(-(xs**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(image.astype(np.float64), ((0, 0), (radius, radius), (0, 0)), mode="edge")
    across = sum(k * padded[:, i : i + image.shape[1]] for i, k in enumerate(kernel))
    padded = np.pad(across, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    blurred = sum(k * padded[i : i + image.shape[0]] for i, k in enumerate(kernel))
    return to_u8(w[..., None] * image + (1 - w[..., None]) * blurred)


def crop(image, w, margin):
    rows, cols = np.nonzero(w > 0.5)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    grow_x = int(round_away((right - left) * margin))
    grow_y = int(round_away((bottom - top) * margin))
    height, width = w.shape
    return image[max(0, top - grow_y) : min(height, bottom + grow_y), max(0, left - grow_x) : min(width, right + grow_x)]


def fill(image, w, colour):
    return to_u8(w[..., None] * image + (1 - w[..., None]) * np.array(colour))


def patch_weights(w, size, grid):
    height, width = w.shape
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    resized = (size, new_long) if width <= height else (new_long, size)
    left = round((resized[0] - size) / 2)  # Python's round is half to even, as torchvision's
    top = round((resized[1] - size) / 2)
    sx, sy = width / resized[0], height / resized[1]
    patch = size / grid
    centres_x = np.arange(width) + 0.5
    centres_y = np.arange(height) + 0.5
    out = []
    for row in range(grid):
        for col in range(grid):
            x0, x1 = (left + col * patch) * sx, (left + (col + 1) * patch) * sx
            y0, y1 = (top + row * patch) * sy, (top + (row + 1) * patch) * sy
            in_x = (centres_x >= x0) & (centres_x < x1)
            in_y = (centres_y >= y0) & (centres_y < y1)
            if in_x.any() and in_y.any():
                out.append(w[np.ix_(in_y, in_x)].mean())
            else:  # a patch smaller than a pixel: the pixel under its centre
                x = min(int((x0 + x1) / 2), width - 1)
                y = min(int((y0 + y1) / 2), height - 1)
                out.append(w[y, x])
    return np.array(out)


def main():
    rng = np.random.default_rng(16)
    height, width = 23, 31
    image = rng.integers(0, 256, (height, width, 3)).astype(np.float64)
    ys, xs = np.mgrid[0:height, 0:width]
    # A soft disc off-centre: weights 1 inside, 0 far outside, a ramp between.
    distance = np.hypot(xs - 19.3, ys - 9.7)
    w = np.clip((8.0 - distance) / 3.0, 0.0, 1.0).astype(np.float32)
    w64 = w.astype(np.float64)
    cases = {
        "overlay": {"prompt": {"kind": "overlay", "inside": [255, 0, 0], "inside_alpha": 0.35,
                               "outside": [0, 0, 255], "outside_alpha": 0.2},
                    "pixels": overlay(image, w64, [255, 0, 0], 0.35, [0, 0, 255], 0.2)},
        "blur": {"prompt": {"kind": "blur_outside", "sigma": 2.5}, "pixels": blur(image, w64, 2.5)},
        "crop": {"prompt": {"kind": "crop_to_box", "margin": 0.3}, "pixels": crop(image.astype(np.uint8), w64, 0.3)},
        "binary": {"prompt": {"kind": "binary_mask"}, "pixels": fill(image, w64, [0, 0, 0])},
        "grey": {"prompt": {"kind": "grey_outside"}, "pixels": fill(image, w64, OPENAI_MEAN * 255)},
    }
    size, grid, strength = 16, 4, 2.0
    patches = patch_weights(w64, size, grid)
    fixture = {
        "width": width,
        "height": height,
        "image": image.astype(np.uint8).ravel().tolist(),
        "mask": w.ravel().tolist(),
        "prompts": {
            name: {"prompt": case["prompt"], "width": int(case["pixels"].shape[1]),
                   "height": int(case["pixels"].shape[0]), "pixels": case["pixels"].ravel().tolist()}
            for name, case in cases.items()
        },
        "attention": {"image_size": size, "grid": grid, "strength": strength,
                      "patch_weights": patches.tolist(),
                      "key_bias": [0.0] + (strength * (patches - 1.0)).tolist()},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "focus.json").write_text(json.dumps(fixture))
    print("wrote", OUT / "focus.json")


if __name__ == "__main__":
    main()
