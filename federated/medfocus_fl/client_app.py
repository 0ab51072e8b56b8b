"""The ClientApp: one site. Its images stay here; it replies with the head's arrays and counts.

On train it runs `medfocus train` on the site's own data (any layout `medfocus eval` reads),
starting from the global weights it was sent; embeddings come from the site's cache after the
first round. On evaluate it scores the global head on the site's test images with
`medfocus head score` (the evaluation's own metric code).
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from medfocus_fl.secure import (
    check_secure_range,
    is_legacy,
    legacy_arrays,
    legacy_config,
    legacy_evaluate_reply,
    legacy_fit_reply,
    secagg_when_asked,
)
from medfocus_fl.task import HeadRecipe, Site

app = ClientApp()

# The figures a site reports each round: the evaluation's, by the names Flower records carry.
REPORTED = {
    "accuracy": "accuracy",
    "balanced-accuracy": "balanced_accuracy",
    "macro-f1": "macro_f1",
    "auroc": "auroc",
}


def _received_arrays(msg: Message) -> dict[str, np.ndarray]:
    record: ArrayRecord = msg.content["arrays"]
    return {name: array.numpy() for name, array in record.items()}


def _proximal_mu(config) -> float:
    """FedProx sends its μ with every round (the Message API's key, or the legacy one)."""
    return float(config.get("proximal-mu", config.get("proximal_mu", 0.0)))


# SecAgg+ rounds (the server's `secagg = true`) arrive in the legacy layout through its mod.
@app.train(mods=[secagg_when_asked])
def train(msg: Message, context: Context) -> Message:
    recipe = HeadRecipe.from_run_config(context.run_config)
    site = Site.from_configs(context.node_config, context.run_config)
    if is_legacy(msg):
        names = sorted(recipe.tensor_names())
        start = legacy_arrays(msg, names)
        arrays, images = site.train(recipe, start, _proximal_mu(legacy_config(msg)))
        check_secure_range(arrays, images, context.run_config)
        return legacy_fit_reply(msg, arrays, names, images)
    config = msg.content.get("config", ConfigRecord())
    arrays, images = site.train(recipe, _received_arrays(msg), _proximal_mu(config))
    # Exactly the head's arrays and the image count FedAvg weights by: nothing else leaves.
    content = RecordDict(
        {
            "arrays": ArrayRecord({name: Array(value) for name, value in arrays.items()}),
            "metrics": MetricRecord({"num-examples": images}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    recipe = HeadRecipe.from_run_config(context.run_config)
    site = Site.from_configs(context.node_config, context.run_config)
    legacy = is_legacy(msg)
    received = legacy_arrays(msg, sorted(recipe.tensor_names())) if legacy else _received_arrays(msg)
    scored = site.score(recipe, received)
    metrics = scored["metrics"]
    figures = {
        name: float("nan") if metrics[key] is None else float(metrics[key])
        for name, key in REPORTED.items()
    }
    if legacy:
        return legacy_evaluate_reply(msg, figures, metrics["log_loss"], int(scored["images"]), site.name)
    content = RecordDict(
        {
            "metrics": MetricRecord({"num-examples": int(scored["images"]), **figures}),
            # Which site the figures are, for the report (the SuperLink knows its nodes anyway).
            "site": ConfigRecord({"name": site.name}),
        }
    )
    return Message(content=content, reply_to=msg)

