"""The run's report: `report.json` (every round: what each site sent, its figures, the global
ones, time), `report.md` for a person, and `accuracy.png` (test accuracy per round, per site
and weighted over the sites)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping


def _round_figures(rounds: Mapping[int, dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = [rounds[number] for number in sorted(rounds)]
    previous = 0.0
    for entry in ordered:
        # Seconds since the run began at the end of the round → the round's own duration.
        if "seconds" in entry:
            entry["round_seconds"] = entry["seconds"] - previous
            previous = entry["seconds"]
    return ordered


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def write_plot(path: Path, rounds: list[dict[str, Any]]) -> bool:
    """Test accuracy per round for every site and the weighted mean; False without figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    evaluated = [entry for entry in rounds if entry.get("sites")]
    if not evaluated:
        return False
    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    names = sorted({name for entry in evaluated for name in entry["sites"]})
    for name in names:
        points = [
            (entry["round"], entry["sites"][name]["accuracy"])
            for entry in evaluated
            if "accuracy" in entry["sites"].get(name, {})
        ]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", linewidth=1, label=f"site {name}")
    overall = [
        (entry["round"], entry["global"]["accuracy"])
        for entry in evaluated
        if "accuracy" in entry.get("global", {})
    ]
    if overall:
        axes.plot(*zip(*overall, strict=True), marker="s", linewidth=2.5, color="black", label="all sites (weighted)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("round")
    axes.set_ylabel("accuracy of the global head")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title("The global head on each site's test images (all its images without a test split)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def write_report(
    out_dir: Path, config: Mapping[str, Any], rounds: Mapping[int, dict[str, Any]], head: Path
) -> None:
    ordered = _round_figures(rounds)
    sent = [entry.get("bytes_received", 0) for entry in ordered]
    report = {
        "head": str(head),
        "run_config": dict(config),
        "rounds": ordered,
        "bytes_received_per_round": sent,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    plotted = write_plot(out_dir / "accuracy.png", ordered)

    lines = [
        "# Federated MedFocus head",
        "",
        f"Head `{config['head']}` for {config['classes']}, {len(ordered)} rounds of "
        f"{config.get('strategy', 'fedavg')}, local optimiser {config.get('optimizer')} "
        f"× {config.get('local-epochs')} epochs. Final head: `{head}`.",
        "",
        (
            "Secure aggregation (SecAgg+): each round the server learned the sum of the sites' "
            "heads and their image counts, never one site's head; and each site's test figures. "
            "No image, no embedding."
            if any("secure_aggregation" in entry for entry in ordered)
            else "What the server received each round: the head's arrays and each site's image "
            "count (train), each site's test figures (evaluate). No image, no embedding."
        ),
        "",
        "| round | seconds | bytes received | accuracy | balanced accuracy | macro-F1 | AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in ordered:
        overall = entry.get("global", {})
        lines.append(
            "| {round} | {seconds} | {bytes} | {acc} | {bal} | {f1} | {auc} |".format(
                round=entry["round"],
                seconds=_number(entry.get("round_seconds", float("nan"))),
                bytes=(
                    "masked (SecAgg+)"
                    if "secure_aggregation" in entry
                    else entry.get("bytes_received", 0)
                ),
                acc=_number(overall.get("accuracy", float("nan"))),
                bal=_number(overall.get("balanced-accuracy", float("nan"))),
                f1=_number(overall.get("macro-f1", float("nan"))),
                auc=_number(overall.get("auroc", float("nan"))),
            )
        )
    if ordered and ordered[-1].get("sites"):
        lines += ["", "Per site, after the last round:", "", "| site | test images | accuracy | balanced accuracy | macro-F1 | AUROC |", "|---|---|---|---|---|---|"]
        for name, figures in sorted(ordered[-1]["sites"].items()):
            if "error" in figures:
                lines.append(f"| {name} | error: {figures['error']} | | | | |")
                continue
            lines.append(
                f"| {name} | {int(figures['num-examples'])} | {_number(figures['accuracy'])} | "
                f"{_number(figures['balanced-accuracy'])} | {_number(figures['macro-f1'])} | "
                f"{_number(figures['auroc'])} |"
            )
    if plotted:
        lines += ["", "![test accuracy per round](accuracy.png)"]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
