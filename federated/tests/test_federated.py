"""Federated training through Flower's own processes: a SuperLink and one SuperNode per site on
loopback, TLS and SuperNode authentication, `flwr run` of the app, the medfocus binary at every
site. Run: `python -m unittest discover -s federated/tests -v` (scripts/test.sh does)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import (  # noqa: E402
    BRAIN_MRI,
    CLASSES,
    SPREAD_CLIP,
    TINY_CLIP,
    brain_sites,
    colour_sites,
    medfocus,
    medfocus_binary,
    medfocus_json,
    npz,
)
from medfocus_fl.deploy import LocalDeployment, toml_string  # noqa: E402

CLASS_LIST = ",".join(CLASSES)


def run_config(out: Path, sites: int, model: Path = TINY_CLIP, **settings: object) -> str:
    values = {
        "model": str(model),
        "medfocus": medfocus_binary(),
        "out-dir": str(out),
        "min-nodes": sites,
        "classes": CLASS_LIST,
        **settings,
    }
    def toml(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return toml_string(value) if isinstance(value, str) else str(value)

    return " ".join(f"{key}={toml(value)}" for key, value in values.items())


def central_gradient_descent(work: Path, start: Path, steps: int) -> dict[str, np.ndarray]:
    """The same plain gradient steps as the federated runs, on every brain-MRI image at once."""
    central = work / "central.mfh"
    medfocus_json(
        "train", "--data", str(BRAIN_MRI), "--model", str(TINY_CLIP),
        "--head", "linear-probe", "--classes", CLASS_LIST, "--init", str(start),
        "--optimizer", "gradient-descent", "--epochs", str(steps),
        "--learning-rate", "2.0", "--penalty", "0.001", "--holdout", "0",
        "--constant-learning-rate", "--cache", str(work / "cache" / "central"),
        "--out", str(central),
    )
    medfocus("head", "export-arrays", "--head", str(central), "--out", str(work / "central.npz"))
    return npz(work / "central.npz")


def deploy(
    work: Path, sites: dict[str, Path], cache: Path, model: Path = TINY_CLIP
) -> LocalDeployment:
    deployment = LocalDeployment(work / "deployment")
    deployment.start_superlink()
    for name, data in sites.items():
        deployment.register(name)
        deployment.start_supernode(
            name,
            {"data-path": str(data), "model": str(model), "name": name,
             "medfocus": medfocus_binary(), "cache": str(cache / name)},
        )
    deployment.wait_for_nodes(list(sites))
    return deployment


def assert_run_completed(test: unittest.TestCase, done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    test.assertEqual(done.returncode, 0, output[-4000:])
    test.assertNotIn("ServerApp raised an exception", output, output[-4000:])
    test.assertIn("Strategy execution finished", output, output[-4000:])


class FederatedOnBrainMri(unittest.TestCase):
    """FedAvg with one plain gradient step per round and every site every round is central
    gradient descent on the union: the federated head equals the central one."""

    @classmethod
    def setUpClass(cls) -> None:
        if not BRAIN_MRI.exists():
            raise unittest.SkipTest(f"{BRAIN_MRI} is missing (../shared/data)")
        cls.work = Path(tempfile.mkdtemp(prefix="medfocus-fl-exact-"))
        cls.sites = brain_sites(cls.work / "sites")
        cls.out = cls.work / "out"
        cls.rounds = 10
        cls.deployment = deploy(cls.work, cls.sites, cls.work / "cache")
        # A site that never registered its key, started while the others train.
        cls.intruder = cls.deployment.start_supernode(
            "intruder",
            {"data-path": str(cls.sites["a"]), "model": str(TINY_CLIP), "name": "intruder"},
            give_up_after=15,
        )
        started = time.monotonic()
        cls.done = cls.deployment.run(
            run_config(
                cls.out, len(cls.sites),
                **{
                    "num-server-rounds": cls.rounds,
                    "optimizer": "gradient-descent",
                    "local-epochs": 1,
                    "learning-rate": 2.0,
                    "penalty": 0.001,
                    "fraction-evaluate": 1.0,
                },
            )
        )
        cls.seconds = time.monotonic() - started
        cls.intruder_exit = cls.intruder.wait(timeout=120)
        cls.deployment.stop()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_the_run_completes_through_the_superlink_and_supernodes(self) -> None:
        assert_run_completed(self, self.done)
        report = json.loads((self.out / "report.json").read_text())
        self.assertEqual(len(report["rounds"]), self.rounds)
        print(
            f"\n{self.rounds} rounds, 3 sites, {self.seconds:.1f} s in all; "
            f"bytes received per round {report['bytes_received_per_round'][0]}",
            file=sys.stderr,
        )

    def test_the_federated_head_equals_central_gradient_descent_on_the_union(self) -> None:
        assert_run_completed(self, self.done)
        federated = npz(self.out / "federated-head.npz")
        centrally = central_gradient_descent(self.work, self.out / "start.mfh", self.rounds)
        start_head = self.work / "start.npz"
        medfocus("head", "export-arrays", "--head", str(self.out / "start.mfh"), "--out", str(start_head))
        start = npz(start_head)
        self.assertEqual(set(federated), {"linear.weight", "linear.bias"})
        for name in federated:
            difference = float(np.abs(federated[name] - centrally[name]).max())
            moved = float(np.abs(centrally[name] - start[name]).max())
            print(f"\n{name}: federated − central {difference:.2e}, moved {moved:.3f}", file=sys.stderr)
            self.assertLess(difference, 1e-5, name)
            # Not equal because nothing moved: ten steps took it well away from the start.
            self.assertGreater(moved, 0.05, name)

    def test_a_node_without_a_registered_key_is_refused(self) -> None:
        self.assertNotEqual(self.intruder_exit, 0)
        log = self.deployment.log("supernode-intruder")
        self.assertIn("Failed to activate SuperNode", log)
        self.assertNotIn("SuperNode ID", log)
        for name in self.sites:
            self.assertIn("SuperNode ID", self.deployment.log(f"supernode-{name}"))

    def test_a_site_sends_the_heads_arrays_and_its_count_only(self) -> None:
        assert_run_completed(self, self.done)
        report = json.loads((self.out / "report.json").read_text())
        for entry in report["rounds"]:
            replies = entry["train_replies"]
            self.assertEqual(len(replies), 3)
            for reply in replies:
                self.assertEqual(reply["config_records"], {})
                self.assertEqual(list(reply["metric_records"]), ["metrics"])
                self.assertEqual(list(reply["metric_records"]["metrics"]), ["num-examples"])
                arrays = reply["array_records"]["arrays"]
                self.assertEqual(set(arrays), {"linear.weight", "linear.bias"})
                self.assertEqual(arrays["linear.weight"]["shape"], [4, 24])
                self.assertEqual(arrays["linear.bias"]["shape"], [4])
                for array in arrays.values():
                    self.assertEqual(array["dtype"], "float32")
                    # The values and a .npy header: nothing rides along.
                    values = 4 * int(np.prod(array["shape"]))
                    self.assertLessEqual(array["bytes"], values + 128)
                self.assertLessEqual(reply["array_bytes"], 1024)
            counts = sorted(r["metric_records"]["metrics"]["num-examples"] for r in replies)
            self.assertEqual(counts, [5, 6, 6])
            # Evaluate replies: the figures and the site's name.
            self.assertEqual(set(entry["sites"]), {"a", "b", "c"})
            for figures in entry["sites"].values():
                self.assertEqual(
                    set(figures), {"num-examples", "accuracy", "balanced-accuracy", "macro-f1", "auroc"}
                )

    def test_the_final_head_predicts_natively(self) -> None:
        assert_run_completed(self, self.done)
        head = self.out / "federated-head.mfh"
        images = sorted(str(path) for path in (BRAIN_MRI / "glioma").iterdir())[:2]
        lines = medfocus("predict", "--head", str(head), "--model", str(TINY_CLIP), "--json", *images)
        answers = [json.loads(line) for line in lines.splitlines() if line.strip()]
        self.assertEqual(len(answers), 2)
        for answer in answers:
            self.assertEqual(answer["classes"], CLASSES)
            self.assertAlmostEqual(sum(answer["probabilities"]), 1.0, places=5)
        self.assertTrue((self.out / "report.md").exists())
        self.assertTrue((self.out / "accuracy.png").stat().st_size > 1000)


class SecureAggregation(unittest.TestCase):
    """SecAgg+ through the same processes: the server gets only the sum of the sites' heads, and
    that sum is FedAvg's up to the protocol's quantisation."""

    @classmethod
    def setUpClass(cls) -> None:
        if not BRAIN_MRI.exists():
            raise unittest.SkipTest(f"{BRAIN_MRI} is missing (../shared/data)")
        cls.work = Path(tempfile.mkdtemp(prefix="medfocus-fl-secagg-"))
        cls.sites = brain_sites(cls.work / "sites")
        cls.out = cls.work / "out"
        cls.rounds = 3
        cls.deployment = deploy(cls.work, cls.sites, cls.work / "cache")
        try:
            cls.done = cls.deployment.run(
                run_config(
                    cls.out, len(cls.sites),
                    **{
                        "num-server-rounds": cls.rounds,
                        "optimizer": "gradient-descent",
                        "local-epochs": 1,
                        "learning-rate": 2.0,
                        "secagg": True,
                        "secagg-max-weight": 20.0,
                        "fraction-evaluate": 0.0,
                    },
                )
            )
        finally:
            cls.deployment.stop()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_the_server_sees_only_the_sum_and_it_is_fedavgs(self) -> None:
        output = self.done.stdout + self.done.stderr
        self.assertEqual(self.done.returncode, 0, output[-4000:])
        self.assertIn("Secure aggregation completed", output, output[-4000:])
        report = json.loads((self.out / "report.json").read_text())
        self.assertEqual(len(report["rounds"]), self.rounds)
        for entry in report["rounds"]:
            self.assertNotIn("train_replies", entry)
            seen = entry["secure_aggregation"]
            self.assertEqual(seen["num_examples"], [5, 6, 6])
            self.assertTrue(seen["every_result_holds_the_same_sum"])
        federated = npz(self.out / "federated-head.npz")
        centrally = central_gradient_descent(self.work, self.out / "start.mfh", self.rounds)
        for name in federated:
            difference = float(np.abs(federated[name] - centrally[name]).max())
            print(f"\nSecAgg+ {name}: federated − central {difference:.2e}", file=sys.stderr)
            # Quantisation: 2·64/2²² per value, scaled by max-weight / images = 20/5.
            self.assertLess(difference, 5e-4, name)


class FocusedCoopThroughSam2(unittest.TestCase):
    """A focused CoOp head (overlay on SAM 2's automatic masks): every site segments its own
    images with its SAM 2 and learns the prompt's context; the final head records the focus and
    the SAM 2 it needs, and its class texts are its context through the text tower."""

    SAM2 = TINY_CLIP.parents[1] / "sam2"

    @classmethod
    def setUpClass(cls) -> None:
        if not BRAIN_MRI.exists():
            raise unittest.SkipTest(f"{BRAIN_MRI} is missing (../shared/data)")
        cls.work = Path(tempfile.mkdtemp(prefix="medfocus-fl-focus-"))
        cls.sites = brain_sites(cls.work / "sites")
        cls.out = cls.work / "out"
        cls.deployment = deploy(cls.work, cls.sites, cls.work / "cache")
        try:
            cls.done = cls.deployment.run(
                run_config(
                    cls.out, len(cls.sites),
                    **{
                        "num-server-rounds": 1,
                        "head": "coop",
                        "learning-rate": 0.002,
                        "focus": "overlay",
                        "masks": "sam2",
                        "sam2": str(cls.SAM2 / "sam2.1-tiny-small.pt"),
                        "sam2-config": str(cls.SAM2 / "sam2.1-tiny-small.config.json"),
                    },
                )
            )
        finally:
            cls.deployment.stop()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_the_coop_head_is_focused_as_the_sites_trained_and_predicts_with_sam2(self) -> None:
        assert_run_completed(self, self.done)
        head = self.out / "federated-head.mfh"
        image = str(BRAIN_MRI / "glioma" / "Te-gl_0010.jpg")
        sam2 = ["--sam2", str(self.SAM2 / "sam2.1-tiny-small.pt"),
                "--sam2-config", str(self.SAM2 / "sam2.1-tiny-small.config.json")]
        answer = json.loads(
            medfocus("predict", "--head", str(head), "--model", str(TINY_CLIP), *sam2, "--json", image)
        )
        self.assertAlmostEqual(sum(answer["probabilities"]), 1.0, places=5)
        done = subprocess.run(
            [medfocus_binary(), "predict", "--head", str(head), "--model", str(TINY_CLIP), image],
            capture_output=True, text=True, check=False,
        )
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("overlay", done.stderr)
        self.assertIn("sam2.1-tiny-small.pt", done.stderr)
        # What each site sent: CoOp's context only; what each reported: its figures.
        report = json.loads((self.out / "report.json").read_text())
        for reply in report["rounds"][0]["train_replies"]:
            self.assertEqual(list(reply["array_records"]["arrays"]), ["coop.context"])
        self.assertEqual(set(report["rounds"][0]["sites"]), {"a", "b", "c"})


class FederatedBeatsEverySiteAlone(unittest.TestCase):
    """The default optimiser (Adam) with several local epochs: on held-out images the federated
    head is at least as accurate as the best single site's and close to the central head. Each
    site lacks a class, so alone it cannot pass 3 of 4; the federation knows all four. (On the
    spreading tiny CLIP: openclip-tiny's embeddings are too alike for any head to learn well.)"""

    MARGIN = 0.1

    @classmethod
    def setUpClass(cls) -> None:
        cls.work = Path(tempfile.mkdtemp(prefix="medfocus-fl-accuracy-"))
        cls.sites, cls.held_out, cls.union = colour_sites(cls.work / "data")
        cls.out = cls.work / "out"
        cls.rounds, cls.local_epochs = 5, 5
        cls.deployment = deploy(cls.work, cls.sites, cls.work / "cache", SPREAD_CLIP)
        try:
            cls.done = cls.deployment.run(
                run_config(
                    cls.out, len(cls.sites), SPREAD_CLIP,
                    **{"num-server-rounds": cls.rounds, "local-epochs": cls.local_epochs},
                )
            )
        finally:
            cls.deployment.stop()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.work, ignore_errors=True)

    def held_out_accuracy(self, head: Path) -> float:
        scored = medfocus_json(
            "head", "score", "--head", str(head), "--model", str(SPREAD_CLIP),
            "--data", str(self.held_out), "--cache", str(self.work / "cache" / "held-out"),
        )
        self.assertEqual(scored["images"], 32)
        return scored["metrics"]["accuracy"]

    def trained_alone(self, data: Path, name: str, **extra: str) -> Path:
        """The same recipe on one set alone: Adam, as many epochs as the rounds gave."""
        head = self.work / f"{name}.mfh"
        args = [
            "train", "--data", str(data), "--model", str(SPREAD_CLIP), "--head", "linear-probe",
            "--classes", CLASS_LIST, "--init", str(self.out / "start.mfh"),
            "--optimizer", "adam", "--epochs", str(self.rounds * self.local_epochs),
            "--learning-rate", "0.01", "--penalty", "0.001", "--holdout", "0",
            "--constant-learning-rate", "--cache", str(self.work / "cache" / name),
            "--out", str(head),
        ]
        medfocus_json(*args)
        return head

    def test_the_federated_head_beats_each_site_and_nears_the_central_head(self) -> None:
        assert_run_completed(self, self.done)
        federated = self.held_out_accuracy(self.out / "federated-head.mfh")
        alone = {
            name: self.held_out_accuracy(self.trained_alone(data, f"site-{name}"))
            for name, data in self.sites.items()
        }
        central = self.held_out_accuracy(self.trained_alone(self.union, "central"))
        zero_shot = self.held_out_accuracy(self.out / "start.mfh")
        print(
            f"\nheld-out accuracy (32 images): federated {federated:.3f}, central {central:.3f}, "
            f"sites alone {', '.join(f'{n} {a:.3f}' for n, a in alone.items())}, "
            f"start (zero-shot prior) {zero_shot:.3f}",
            file=sys.stderr,
        )
        self.assertGreaterEqual(federated, max(alone.values()))
        self.assertLessEqual(abs(central - federated), self.MARGIN)


if __name__ == "__main__":
    unittest.main()
