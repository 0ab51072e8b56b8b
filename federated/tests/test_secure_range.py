"""A site refuses to send what SecAgg+ would silently clip or overflow (no Flower run needed)."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medfocus_fl.secure import check_secure_range  # noqa: E402
from medfocus_fl.task import HeadRecipe, MedFocusError  # noqa: E402


class SecureRange(unittest.TestCase):
    def test_weights_within_the_clipping_range_pass_and_beyond_it_are_refused(self) -> None:
        run = {"secagg-clipping-range": 8.0, "secagg-max-weight": 100.0}
        check_secure_range({"linear.weight": np.full((4, 24), 7.9, np.float32)}, 50, run)
        with self.assertRaisesRegex(MedFocusError, "beyond secagg-clipping-range 8"):
            check_secure_range({"linear.weight": np.array([[-8.5]], np.float32)}, 50, run)
        with self.assertRaisesRegex(MedFocusError, "exceed secagg-max-weight 100"):
            check_secure_range({"linear.weight": np.zeros((1, 1), np.float32)}, 101, run)


class Recipe(unittest.TestCase):
    def test_heads_whose_weights_hold_images_are_refused_by_name(self) -> None:
        for head in ("tip-adapter", "tip-adapter-f"):
            with self.assertRaisesRegex(MedFocusError, "must not leave a site"):
                HeadRecipe.from_run_config({"head": head, "classes": "a,b"})
        recipe = HeadRecipe.from_run_config({"head": "coop", "classes": "a,b", "proximal-mu": 0.1})
        self.assertEqual(recipe.tensor_names(), ["coop.context"])
        self.assertIn("--context-tokens", recipe.prompt_args())


if __name__ == "__main__":
    unittest.main()
