"""The MedFocus side of a round: every step is the `medfocus` binary, called as a subprocess.

Nothing is trained or scored in Python. A head's weights travel as the `.npz` that
`medfocus head export-arrays` writes (float32, bit-exact), one `Array` per tensor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

# The heads whose weights may leave a site: their tensors say nothing image by image.
FEDERATED_HEADS = ("linear-probe", "lp-text", "coop")


class MedFocusError(RuntimeError):
    """A `medfocus` call failed; the message is its own error line."""


def medfocus_binary(*configured: Any) -> str:
    """The first configured binary that is set, else `medfocus` on PATH."""
    for value in configured:
        if value:
            return os.path.expanduser(str(value))
    found = shutil.which("medfocus")
    if not found:
        raise MedFocusError(
            "no medfocus binary: put it on PATH, or name it in the run config (medfocus=…) or "
            "the node config"
        )
    return found


def run_medfocus(binary: str, *args: str) -> str:
    """Runs `medfocus ARGS…` and returns its standard output; raises with its error line."""
    done = subprocess.run(
        [binary, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MedFocusError(
            f"medfocus {args[0] if args else ''} {args[1] if len(args) > 1 else ''}: "
            + (lines[-1] if lines else f"exit status {done.returncode}")
        )
    return done.stdout


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of `--json` output."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


@dataclass(frozen=True)
class HeadRecipe:
    """What the run config says about the head, shared by the server and every site."""

    head: str
    classes: str
    class_names: str
    templates: str
    focus: str
    optimizer: str
    local_epochs: int
    learning_rate: float
    penalty: float
    text_weight: float
    context_tokens: int
    present_classes_only: bool
    masks: str
    sam2: str
    sam2_config: str

    @staticmethod
    def from_run_config(config: Mapping[str, Any]) -> "HeadRecipe":
        head = str(config["head"])
        if head not in FEDERATED_HEADS:
            why = {
                "tip-adapter": "its cache keys are the training images' embeddings, which must not leave a site",
                "tip-adapter-f": "its cache keys are the training images' embeddings, which must not leave a site",
                "zero-shot": "it has nothing to train",
                "finetune": "its weights are whole blocks of the image tower, not a head",
            }.get(head, "it is not a head MedFocus federates")
            raise MedFocusError(f"head {head} is not federated: {why}")
        return HeadRecipe(
            head=head,
            classes=str(config["classes"]),
            class_names=str(config.get("class-names", "")),
            templates=str(config.get("templates", "")),
            focus=str(config.get("focus", "none")),
            optimizer=str(config.get("optimizer", "adam")),
            local_epochs=int(config.get("local-epochs", 5)),
            learning_rate=float(config.get("learning-rate", 0.01)),
            penalty=float(config.get("penalty", 0.001)),
            text_weight=float(config.get("text-weight", 1.0)),
            context_tokens=int(config.get("context-tokens", 4)),
            present_classes_only=bool(config.get("present-classes-only", False)),
            masks=str(config.get("masks", "")),
            sam2=os.path.expanduser(str(config.get("sam2", ""))),
            sam2_config=os.path.expanduser(str(config.get("sam2-config", ""))),
        )

    def tensor_names(self) -> list[str]:
        """The head's trained tensors (`medfocus head export-arrays` writes these)."""
        return ["coop.context"] if self.head == "coop" else ["linear.weight", "linear.bias"]

    def mask_args(self, sam2: str = "", sam2_config: str = "") -> list[str]:
        """Where each image's mask comes from for a focus other than none: SAM 2's automatic
        masks (`sam2`: these weights, a site's own copy or the run config's), or the set's own
        ground truth (`gt`). The server passes them too: the head records the SAM 2 it was given."""
        if self.masks in ("", "none"):
            return []
        args = ["--masks", self.masks]
        if self.masks == "sam2":
            weights = sam2 or self.sam2
            if not weights:
                raise MedFocusError("masks=sam2 needs SAM 2's weights: the run config's sam2=… or a site's")
            args += ["--sam2", weights]
            if sam2_config or self.sam2_config:
                args += ["--sam2-config", sam2_config or self.sam2_config]
        return args

    def prompt_args(self) -> list[str]:
        """The class and prompt arguments `train` and `head from-prompts` share."""
        args = ["--classes", self.classes, "--focus", self.focus]
        if self.class_names:
            args += ["--class-names", self.class_names]
        if self.templates:
            args += ["--templates", self.templates]
        if self.head == "coop":
            args += ["--context-tokens", str(self.context_tokens)]
        return args

    def train_args(self, proximal_mu: float) -> list[str]:
        """One round's local training: from the global weights, a fixed objective, no search,
        no held-out share and a constant learning rate (so rounds add up)."""
        args = [
            "--head", self.head,
            "--optimizer", self.optimizer,
            "--epochs", str(self.local_epochs),
            "--learning-rate", repr(self.learning_rate),
            "--holdout", "0",
            "--constant-learning-rate",
            "--proximal-mu", repr(proximal_mu),
        ]
        if self.head == "linear-probe":
            args += ["--penalty", repr(self.penalty)]
        if self.head == "lp-text":
            args += ["--text-weight", repr(self.text_weight)]
        if self.present_classes_only:
            args += ["--present-classes-only"]
        return args


def arrays_to_npz(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    """Writes arrays as an uncompressed `.npz`, float32, the names as they are."""
    with open(path, "wb") as file:
        np.savez(file, **{name: np.asarray(value, dtype=np.float32) for name, value in arrays.items()})


def npz_to_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@dataclass(frozen=True)
class Site:
    """One site's own settings (its node config): its data and its copy of the model."""

    name: str
    data: str
    model: str
    binary: str
    cache: str
    test_split: str
    # The site's own SAM 2 weights (and config), when the focus needs masks.
    sam2: str = ""
    sam2_config: str = ""

    @staticmethod
    def from_configs(node: Mapping[str, Any], run: Mapping[str, Any]) -> "Site":
        data = node.get("data-path")
        name = node.get("name")
        if not data and "partition-id" in node:
            # Flower's simulation: simulated SuperNode i is the i-th of the run config's sites.
            listed = [path for path in str(run.get("sites", "")).split(",") if path]
            index = int(node["partition-id"])
            if index >= len(listed):
                raise MedFocusError(
                    f"simulated SuperNode {index}: the run config's sites lists {len(listed)} "
                    "folder(s); give one per simulated SuperNode (num-supernodes)"
                )
            data, name = listed[index], name or f"site-{index}"
        if not data:
            raise MedFocusError(
                'this SuperNode has no data: start it with --node-config \'data-path="…"\''
            )
        model = node.get("model") or run.get("model")
        if not model:
            raise MedFocusError(
                "no CLIP model folder: give the node config model=… (or the run config's)"
            )
        return Site(
            name=str(name or Path(str(data)).name),
            data=os.path.expanduser(str(data)),
            model=os.path.expanduser(str(model)),
            binary=medfocus_binary(node.get("medfocus"), run.get("medfocus")),
            cache=os.path.expanduser(str(node.get("cache", ""))),
            test_split=str(node.get("test-split", "")),
            sam2=os.path.expanduser(str(node.get("sam2", ""))),
            sam2_config=os.path.expanduser(str(node.get("sam2-config", ""))),
        )

    def cache_args(self) -> list[str]:
        return ["--cache", self.cache] if self.cache else []

    def train(
        self, recipe: HeadRecipe, start: Mapping[str, np.ndarray], proximal_mu: float
    ) -> tuple[dict[str, np.ndarray], int]:
        """Trains the head on this site's images from `start`; its new arrays and image count."""
        with tempfile.TemporaryDirectory(prefix="medfocus-fl-") as tmp:
            work = Path(tmp)
            arrays_to_npz(start, work / "global.npz")
            report = last_json(
                run_medfocus(
                    self.binary, "train",
                    "--data", self.data,
                    "--model", self.model,
                    "--init", str(work / "global.npz"),
                    *recipe.prompt_args(),
                    *recipe.mask_args(self.sam2, self.sam2_config),
                    *recipe.train_args(proximal_mu),
                    *self.cache_args(),
                    "--out", str(work / "local.mfh"),
                    "--checkpoint", str(work / "local.ckpt"),
                    "--fresh",
                    "--json",
                )
            )
            run_medfocus(
                self.binary, "head", "export-arrays",
                "--head", str(work / "local.mfh"),
                "--out", str(work / "local.npz"),
            )
            return npz_to_arrays(work / "local.npz"), int(report["images"])

    def score(
        self, recipe: HeadRecipe, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, Any]:
        """The global head's figures on this site's test images (the eval's own metrics)."""
        with tempfile.TemporaryDirectory(prefix="medfocus-fl-") as tmp:
            work = Path(tmp)
            # The head's identity (classes, CLIP model, focus) from this site's own model; the
            # weights are the global ones.
            run_medfocus(
                self.binary, "head", "from-prompts",
                "--kind", recipe.head,
                "--model", self.model,
                *recipe.prompt_args(),
                *recipe.mask_args(self.sam2, self.sam2_config),
                "--out", str(work / "base.mfh"),
            )
            arrays_to_npz(arrays, work / "global.npz")
            import_args = ["--model", self.model] if recipe.head == "coop" else []
            run_medfocus(
                self.binary, "head", "import-arrays",
                "--head", str(work / "base.mfh"),
                "--arrays", str(work / "global.npz"),
                *import_args,
                "--out", str(work / "global.mfh"),
            )
            split = ["--split", self.test_split] if self.test_split else []
            return last_json(
                run_medfocus(
                    self.binary, "head", "score",
                    "--head", str(work / "global.mfh"),
                    "--model", self.model,
                    "--data", self.data,
                    *split,
                    *recipe.mask_args(self.sam2, self.sam2_config),
                    *self.cache_args(),
                    "--json",
                )
            )
