"""What the federated tests share: the medfocus binary, the fixtures, the sites they build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TINY_CLIP = REPO / "tests" / "fixtures" / "clip" / "openclip-tiny"
BRAIN_MRI = Path(os.environ.get("MEDFOCUS_DATA", REPO.parent / "shared" / "data")) / "brain-mri"
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]

# Three sites from the brain-MRI images, non-IID: each lacks one class; together, every image.
BRAIN_SITES = {
    "a": ["glioma/Te-gl_0010.jpg", "glioma/Te-gl_0011.jpg", "meningioma/Te-me_0016.jpg",
          "meningioma/Te-me_0017.jpg", "meningioma/Te-me_0019.jpg", "notumor/Te-no_0021.jpg"],
    "b": ["glioma/Te-gl_0012.jpg", "glioma/Te-gl_0013.jpg", "meningioma/Te-me_0018.jpg",
          "meningioma/Te-me_0020.jpg", "pituitary/Te-pi_0014.jpg", "pituitary/Te-pi_0015.jpg"],
    "c": ["glioma/Te-gl_0014.jpg", "glioma/Te-gl_0015.jpg", "notumor/Te-no_0022.jpg",
          "notumor/Te-no_0023.jpg", "pituitary/Te-pi_0016.jpg"],
}


def medfocus_binary() -> str:
    """MEDFOCUS_BIN, else the debug build `cargo test` made, else `medfocus` on PATH."""
    if os.environ.get("MEDFOCUS_BIN"):
        return os.environ["MEDFOCUS_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "medfocus" / "target"))
    for candidate in (target / "debug" / "medfocus", REPO / "target" / "debug" / "medfocus"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("medfocus")
    if not found:
        raise RuntimeError("no medfocus binary: build it (cargo build) or set MEDFOCUS_BIN")
    return found


def medfocus(*args: str) -> str:
    done = subprocess.run([medfocus_binary(), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"medfocus {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def medfocus_json(*args: str) -> dict:
    return json.loads([line for line in medfocus(*args, "--json").splitlines() if line.strip()][-1])


def brain_sites(root: Path) -> dict[str, Path]:
    """The three brain-MRI sites as class folders under `root`."""
    sites = {}
    for site, files in BRAIN_SITES.items():
        for relative in files:
            target = root / site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(BRAIN_MRI / relative, target)
        sites[site] = root / site
    return sites


def npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


# --- A set a tiny random-weight CLIP can tell apart ---------------------------------------------
# openclip-tiny embeds every image within cosine 0.998 of every other (its blocks barely mix the
# patches in); openclip-tiny-spread, the same model with its image blocks ×10, spreads them. Four
# classes, each a colour under heavy noise: what varies within a class is the noise.
SPREAD_CLIP = REPO / "tests" / "fixtures" / "clip" / "openclip-tiny-spread"
COLOURS = {"glioma": (200, 30, 30), "meningioma": (30, 200, 30), "notumor": (30, 30, 200), "pituitary": (200, 200, 30)}


def _image(rng: np.random.Generator, colour: tuple[int, int, int], size: int = 64) -> np.ndarray:
    image = np.array(colour, dtype=float)[None, None, :] + rng.normal(0, 40, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def colour_sites(root: Path, seed: int = 0) -> tuple[dict[str, Path], Path, Path]:
    """Three non-IID sites (each lacks one class; 6 training and 2 test images per class it
    has), a held-out test set (8 per class) and the union of the sites' training images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    lacks = {"a": "pituitary", "b": "notumor", "c": "meningioma"}
    sites = {}
    for site, missing in lacks.items():
        for name in CLASSES:
            if name == missing:
                continue
            for split, count in (("train", 6), ("test", 2)):
                folder = root / site / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for index in range(count):
                    image = _image(rng, COLOURS[name])
                    Image.fromarray(image).save(folder / f"{site}-{split}-{index}.png")
                    if split == "train":
                        union = root / "union" / name
                        union.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(image).save(union / f"{site}-{index}.png")
        sites[site] = root / site
    for name in CLASSES:
        folder = root / "held-out" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(8):
            Image.fromarray(_image(rng, COLOURS[name])).save(folder / f"test-{index}.png")
    return sites, root / "held-out", root / "union"
