"""Secure aggregation (SecAgg+, Bell et al. 2020): the server learns the weighted sum of the
sites' heads and nothing about any one of them.

Flower 1.42 runs SecAgg+ only in its legacy workflow (`DefaultWorkflow` with a
`SecAggPlusWorkflow`, a `flwr.server.strategy` strategy, the `secaggplus_mod` on the client,
messages in the legacy `fitins`/`fitres` layout), not with the Message API strategies the plain
run uses. This module is that path: the server side (`run_secure`), and what a site needs to
answer it (`secagg_when_asked`, the legacy conversions).

Each site scales its head by its image count over `max-weight`, quantises it within
±`clipping-range` onto 2²² levels, and adds masks that cancel only in the sum; so a weight past
the clipping range would be silently clipped — sites refuse to send one instead — and the mean
carries a quantisation error of about `clipping-range · max-weight / (2²¹ · images)` per value.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from flwr.app import Context, Message, MessageType
from flwr.client.mod import secaggplus_mod
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.strategy import FedProx as LegacyFedProx
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.serverapp import Grid

from medfocus_fl.task import MedFocusError


def secagg_when_asked(msg: Message, context: Context, call_next):
    """The SecAgg+ client protocol for the rounds the server runs it in; other messages pass."""
    if (
        msg.metadata.message_type == MessageType.TRAIN
        and RECORD_KEY_CONFIGS in msg.content.config_records
    ):
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


def is_legacy(msg: Message) -> bool:
    """Whether the message is in the legacy layout (the SecAgg+ workflow's)."""
    return any(name.endswith("ins.parameters") for name in msg.content.array_records)


def legacy_arrays(msg: Message, names: list[str]) -> dict[str, np.ndarray]:
    """The head's arrays from a legacy `fitins`/`evaluateins`, in `names`' (sorted) order."""
    kind = "fitins" if msg.metadata.message_type == MessageType.TRAIN else "evaluateins"
    parameters = compat.arrayrecord_to_parameters(
        msg.content.array_records[f"{kind}.parameters"], keep_input=True
    )
    values = parameters_to_ndarrays(parameters)
    if len(values) != len(names):
        raise MedFocusError(f"{len(values)} arrays arrived; this head has {len(names)}: {names}")
    return dict(zip(names, values, strict=True))


def legacy_config(msg: Message) -> dict[str, Any]:
    kind = "fitins" if msg.metadata.message_type == MessageType.TRAIN else "evaluateins"
    return dict(msg.content.config_records.get(f"{kind}.config", {}))


def check_secure_range(arrays: Mapping[str, np.ndarray], images: int, run: Mapping[str, Any]) -> None:
    """A site refuses to send what SecAgg+ would silently clip."""
    clipping = float(run.get("secagg-clipping-range", 64.0))
    max_weight = float(run.get("secagg-max-weight", 1000.0))
    if images > max_weight:
        raise MedFocusError(
            f"{images} training images exceed secagg-max-weight {max_weight:g}: raise it"
        )
    largest = max(float(np.abs(value).max()) for value in arrays.values())
    if largest > clipping:
        raise MedFocusError(
            f"a weight of {largest:.3g} is beyond secagg-clipping-range {clipping:g}; SecAgg+ "
            "would clip it: raise the range"
        )


def legacy_fit_reply(msg: Message, arrays: Mapping[str, np.ndarray], names: list[str], images: int) -> Message:
    fitres = FitRes(
        status=Status(code=Code.OK, message=""),
        parameters=ndarrays_to_parameters([np.asarray(arrays[name], np.float32) for name in names]),
        num_examples=images,
        metrics={},
    )
    return Message(content=compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=msg)


def legacy_evaluate_reply(msg: Message, figures: Mapping[str, float], loss: float, images: int, site: str) -> Message:
    evaluateres = EvaluateRes(
        status=Status(code=Code.OK, message=""),
        loss=float(loss),
        num_examples=images,
        metrics={**{name: float(value) for name, value in figures.items()}, "site": site},
    )
    return Message(content=compat.evaluateres_to_recorddict(evaluateres), reply_to=msg)


def run_secure(
    grid: Grid,
    context: Context,
    initial: Mapping[str, np.ndarray],
    ledger,
) -> dict[str, np.ndarray]:
    """Rounds of FedAvg (or FedProx) with SecAgg+; the final arrays by name."""
    config = context.run_config
    names = sorted(initial)
    sites = int(config.get("min-nodes", 2))
    rounds = int(config["num-server-rounds"])
    fraction_evaluate = float(config.get("fraction-evaluate", 1.0))

    class Recording:
        """The legacy strategy's hooks, recorded: what the server gets to see."""

        def aggregate_fit(self, server_round, results, failures):
            if failures:
                raise MedFocusError(f"round {server_round}: {len(failures)} site(s) failed")
            if len(results) < sites:
                raise MedFocusError(f"round {server_round}: {len(results)} of the {sites} sites replied")
            ledger.secure_train(server_round, results)
            return super().aggregate_fit(server_round, results, failures)

        def aggregate_evaluate(self, server_round, results, failures):
            figures = {}
            for _, res in results:
                metrics = dict(res.metrics)
                name = str(metrics.pop("site", "?"))
                figures[name] = {"num-examples": res.num_examples, **metrics}
            ledger.evaluate_sites(server_round, figures, failures)
            return None, {}

    base = LegacyFedProx if str(config.get("strategy", "fedavg")) == "fedprox" else LegacyFedAvg
    strategy_class = type(f"Recording{base.__name__}", (Recording, base), {})
    options: dict[str, Any] = dict(
        fraction_fit=1.0,
        fraction_evaluate=fraction_evaluate,
        min_fit_clients=sites,
        min_evaluate_clients=sites if fraction_evaluate > 0 else 0,
        min_available_clients=sites,
        initial_parameters=ndarrays_to_parameters([np.asarray(initial[name], np.float32) for name in names]),
    )
    if base is LegacyFedProx:
        options["proximal_mu"] = float(config.get("proximal-mu", 0.0))
    strategy = strategy_class(**options)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
    shares = int(config.get("secagg-shares", 0)) or sites
    threshold = int(config.get("secagg-threshold", 0)) or (shares // 2 + 1)
    DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=shares,
            reconstruction_threshold=threshold,
            clipping_range=float(config.get("secagg-clipping-range", 64.0)),
            max_weight=float(config.get("secagg-max-weight", 1000.0)),
        )
    )(grid, legacy)
    record = legacy.state.array_records[MAIN_PARAMS_RECORD]
    final = parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, keep_input=True))
    return {name: np.asarray(value, np.float32) for name, value in zip(names, final, strict=True)}
