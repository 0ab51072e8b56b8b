"""The ServerApp: starts from the zero-shot head, runs FedAvg (or FedProx), writes the head.

It needs CLIP's text tower (`medfocus head from-prompts`), never an image. Every round it
records what each site sent — the record names, array names, shapes, dtypes and bytes — and
the sites' test figures; at the end it writes the final head file (which `medfocus predict` and
the page read like any other), `report.json`, `report.md` and `accuracy.png` into `out-dir`.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common import parameters_to_ndarrays
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx

from medfocus_fl.report import write_report
from medfocus_fl.secure import run_secure
from medfocus_fl.task import (
    HeadRecipe,
    MedFocusError,
    arrays_to_npz,
    medfocus_binary,
    npz_to_arrays,
    run_medfocus,
)

app = ServerApp()


class Ledger:
    """What arrived each round, as the server saw it."""

    def __init__(self) -> None:
        self.rounds: dict[int, dict[str, Any]] = {}
        self.started = time.monotonic()

    def _round(self, server_round: int) -> dict[str, Any]:
        return self.rounds.setdefault(server_round, {"round": server_round})

    def train(self, server_round: int, replies: list[Message], expected: int) -> None:
        failures = [reply for reply in replies if reply.has_error()]
        if failures:
            reasons = "; ".join(reply.error.reason for reply in failures)
            raise MedFocusError(f"round {server_round}: {len(failures)} site(s) failed: {reasons}")
        if len(replies) < expected:
            raise MedFocusError(
                f"round {server_round}: {len(replies)} of the {expected} sites replied"
            )
        entry = self._round(server_round)
        entry["train_replies"] = [describe(reply) for reply in replies]
        entry["bytes_received"] = sum(item["array_bytes"] for item in entry["train_replies"])

    def secure_train(self, server_round: int, results: list) -> None:
        """Under SecAgg+ the strategy gets each site's count with the *sum's* parameters: what
        the server saw is recorded so that a test can tell no single site's head was among it."""
        entry = self._round(server_round)
        aggregate = [parameters_to_ndarrays(res.parameters) for _, res in results]
        entry["secure_aggregation"] = {
            "sites": len(results),
            "num_examples": sorted(res.num_examples for _, res in results),
            "every_result_holds_the_same_sum": all(
                all(np.array_equal(a, b) for a, b in zip(arrays, aggregate[0], strict=True))
                for arrays in aggregate
            ),
        }

    def evaluate(self, server_round: int, replies: list[Message]) -> MetricRecord | None:
        sites: dict[str, dict[str, float]] = {}
        failures = []
        for reply in replies:
            if reply.has_error():
                failures.append(f"node {reply.metadata.src_node_id}: {reply.error.reason}")
                continue
            name = str(reply.content["site"]["name"]) if "site" in reply.content else str(
                reply.metadata.src_node_id
            )
            sites[name] = dict(reply.content["metrics"])
        overall = self.evaluate_sites(server_round, sites, failures)
        return MetricRecord(overall) if overall else None

    def evaluate_sites(
        self, server_round: int, sites: dict[str, dict[str, float]], failures: list
    ) -> dict[str, float]:
        entry = self._round(server_round)
        entry["sites"] = {**sites, **{str(failure): {"error": str(failure)} for failure in failures}}
        entry["global"] = weighted(sites.values())
        entry["seconds"] = time.monotonic() - self.started
        return entry["global"]


def describe(reply: Message) -> dict[str, Any]:
    """A reply's contents: every record by kind and name, every array's shape, dtype, bytes."""
    content = reply.content
    arrays = {
        record_name: {
            name: {"shape": list(array.shape), "dtype": array.dtype, "bytes": len(array.data)}
            for name, array in record.items()
        }
        for record_name, record in content.array_records.items()
    }
    return {
        "node": reply.metadata.src_node_id,
        "array_records": arrays,
        "metric_records": {name: dict(record) for name, record in content.metric_records.items()},
        "config_records": {name: dict(record) for name, record in content.config_records.items()},
        "array_bytes": sum(
            entry["bytes"] for record in arrays.values() for entry in record.values()
        ),
    }


def weighted(sites: Iterable[dict[str, float]]) -> dict[str, float]:
    """Each figure averaged over the sites that define it, weighted by their test images."""
    sites = [site for site in sites if "error" not in site]
    names = {name for site in sites for name in site if name != "num-examples"}
    result: dict[str, float] = {}
    for name in sorted(names):
        pairs = [
            (site["num-examples"], site[name])
            for site in sites
            if name in site and not math.isnan(site[name])
        ]
        total = sum(count for count, _ in pairs)
        if total > 0:
            result[name] = sum(count * value for count, value in pairs) / total
    if sites:
        result["num-examples"] = sum(site["num-examples"] for site in sites)
    return result


def recording(base: type) -> type:
    """`base` (FedAvg or FedProx) that records every reply in a ledger and refuses a round
    in which a site failed or stayed away (FedAvg would quietly average fewer)."""

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, ledger: Ledger, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ledger = ledger

        def aggregate_train(self, server_round: int, replies: Iterable[Message]):
            replies = list(replies)
            self.ledger.train(server_round, replies, self.min_train_nodes)
            return super().aggregate_train(server_round, replies)

        def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
            return self.ledger.evaluate(server_round, list(replies))

    Recording.__name__ = f"Recording{base.__name__}"
    return Recording


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    recipe = HeadRecipe.from_run_config(config)
    if str(config.get("strategy", "fedavg")) not in ("fedavg", "fedprox"):
        raise MedFocusError(f"strategy {config.get('strategy')}: fedavg or fedprox")
    binary = medfocus_binary(config.get("medfocus"))
    model = os.path.expanduser(str(config.get("model", "")))
    if not model:
        raise MedFocusError("the run config names no CLIP model folder (model=…) for the server")
    out_dir = Path(os.path.expanduser(str(config.get("out-dir") or "medfocus-federated")))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = out_dir / "start.mfh"
    run_medfocus(
        binary, "head", "from-prompts", "--kind", recipe.head, "--model", model,
        *recipe.prompt_args(), *recipe.mask_args(), "--out", str(start),
    )
    with tempfile.TemporaryDirectory(prefix="medfocus-fl-") as tmp:
        run_medfocus(binary, "head", "export-arrays", "--head", str(start), "--out", f"{tmp}/start.npz")
        initial = npz_to_arrays(Path(tmp) / "start.npz")

    ledger = Ledger()
    if bool(config.get("secagg", False)):
        final = run_secure(grid, context, initial, ledger)
    else:
        final = run_plain(grid, config, initial, ledger)
    finish(binary, model, recipe, out_dir, start, final, config, ledger)


def run_plain(grid: Grid, config, initial, ledger: Ledger) -> dict:
    """FedAvg or FedProx on the Message API: every site's reply recorded, then averaged."""
    sites = int(config.get("min-nodes", 2))
    strategy_name = str(config.get("strategy", "fedavg"))
    common = dict(
        fraction_train=1.0,
        fraction_evaluate=float(config.get("fraction-evaluate", 1.0)),
        min_train_nodes=sites,
        min_evaluate_nodes=sites if float(config.get("fraction-evaluate", 1.0)) > 0 else 0,
        min_available_nodes=sites,
        ledger=ledger,
    )
    if strategy_name == "fedprox":
        strategy = recording(FedProx)(proximal_mu=float(config.get("proximal-mu", 0.0)), **common)
    elif strategy_name == "fedavg":
        strategy = recording(FedAvg)(**common)
    else:
        raise MedFocusError(f"strategy {strategy_name}: fedavg or fedprox")
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord({name: Array(value) for name, value in initial.items()}),
        num_rounds=int(config["num-server-rounds"]),
        train_config=ConfigRecord({}),
    )
    return {name: array.numpy() for name, array in result.arrays.items()}


def finish(binary, model, recipe, out_dir: Path, start: Path, final: dict, config, ledger: Ledger) -> None:
    """The final arrays into the start head: the head file, beside it the arrays, the report."""
    head = out_dir / "federated-head.mfh"
    with tempfile.TemporaryDirectory(prefix="medfocus-fl-") as tmp:
        arrays_to_npz(final, Path(tmp) / "final.npz")
        # Kept beside the head: the exact arrays the last round averaged.
        arrays_to_npz(final, out_dir / "federated-head.npz")
        import_model = ["--model", model] if recipe.head == "coop" else []
        run_medfocus(
            binary, "head", "import-arrays", "--head", str(start),
            "--arrays", f"{tmp}/final.npz", *import_model, "--out", str(head),
        )
    write_report(out_dir, config, ledger.rounds, head)
