#!/usr/bin/env python3
"""Reference values for MedFocus's evaluation metrics, from scikit-learn.

    pip install numpy scikit-learn
    python scripts/reference/gen_metrics.py     # -> tests/fixtures/eval/metrics.json (committed)

Each case is a set of predictions (true labels and per-class probabilities); the fixture holds what
scikit-learn computes from them:

* accuracy: `accuracy_score(y, argmax p)` (ties: the first class, as `np.argmax`);
* balanced accuracy: `balanced_accuracy_score` (mean recall over the classes present in `y`);
* macro-F1: `f1_score(average="macro")` over the classes present in `y` or the predictions,
  a 0/0 precision counted as 0 (scikit-learn's default);
* Cohen's kappa: `cohen_kappa_score`;
* AUROC: one-vs-rest, macro: `roc_auc_score(y, p, multi_class="ovr", average="macro")` when
  every class occurs in `y`; with two classes `roc_auc_score(y, p[:, 1])`; when a class is absent
  from `y` its one-vs-rest AUROC is undefined and the macro mean is taken over the classes
  present (each by `roc_auc_score(y == c, p[:, c])`); null with fewer than two classes present;
* confusion matrix: `confusion_matrix(y, argmax p, labels=range(K))`;
* log loss: `log_loss(y, p, labels=range(K))`;
* expected calibration error (no scikit-learn function): Guo et al. 2017, 15 equal-width bins of
  the top probability, bin b = (b/15, (b+1)/15], ECE = sum over bins |B|/n * |acc(B) - conf(B)|,
  transcribed in NumPy.

Cases cover ties in the scores (AUROC counts a tie as half), a class never predicted, a class
absent from the truth, two classes, and a single test image per class.
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "eval" / "metrics.json"
BINS = 15


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ece(y, p):
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    total = 0.0
    for b in range(BINS):
        lo, hi = b / BINS, (b + 1) / BINS
        members = (confidence > lo) & (confidence <= hi)
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return total


def auroc(y, p, classes):
    present = [c for c in range(classes) if (y == c).any()]
    if len(present) < 2:
        return None
    if classes == 2:
        return metrics.roc_auc_score(y, p[:, 1])
    if len(present) == classes:
        return metrics.roc_auc_score(
            y, p, multi_class="ovr", average="macro", labels=list(range(classes))
        )
    return float(np.mean([metrics.roc_auc_score(y == c, p[:, c]) for c in present]))


def case(name, y, p):
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    classes = p.shape[1]
    predicted = p.argmax(axis=1)
    return {
        "name": name,
        "classes": classes,
        "labels": y.tolist(),
        "probabilities": p.tolist(),
        "expected": {
            "accuracy": metrics.accuracy_score(y, predicted),
            "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
            "macro_f1": metrics.f1_score(y, predicted, average="macro", zero_division=0),
            "kappa": metrics.cohen_kappa_score(y, predicted),
            "auroc": auroc(y, p, classes),
            "log_loss": metrics.log_loss(y, p, labels=list(range(classes))),
            "ece": ece(y, p),
            "confusion": metrics.confusion_matrix(
                y, predicted, labels=list(range(classes))
            ).tolist(),
        },
    }


def main():
    rng = np.random.default_rng(12)
    cases = []

    # Four classes, 60 images, informative but imperfect scores.
    y = rng.integers(0, 4, size=60)
    logits = rng.normal(size=(60, 4)) + 1.5 * np.eye(4)[y]
    cases.append(case("four-classes", y, softmax(logits)))

    # Ties: scores rounded to one decimal, so many images share a score (AUROC counts half).
    y = rng.integers(0, 3, size=40)
    p = np.round(softmax(rng.normal(size=(40, 3)) + np.eye(3)[y]), 1)
    p[:, 2] = 1.0 - p[:, 0] - p[:, 1]  # still sums to one; column 2 absorbs the rounding
    p = np.clip(p, 0.0, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    cases.append(case("ties", y, p))

    # Class 2 occurs in the truth but is never the top prediction.
    y = rng.integers(0, 3, size=30)
    logits = rng.normal(size=(30, 3)) + np.eye(3)[y]
    logits[:, 2] -= 10.0
    cases.append(case("class-never-predicted", y, softmax(logits)))

    # Class 1 never occurs in the truth (but is predicted sometimes).
    y = rng.choice([0, 2, 3], size=30)
    logits = rng.normal(size=(30, 4)) + np.eye(4)[y]
    cases.append(case("class-absent-from-truth", y, softmax(logits)))

    # Two classes.
    y = rng.integers(0, 2, size=25)
    logits = rng.normal(size=(25, 2)) + 0.8 * np.eye(2)[y]
    cases.append(case("two-classes", y, softmax(logits)))

    # Perfect and single-image-per-class predictions, and exact argmax ties (first class wins).
    cases.append(case("one-per-class", [0, 1, 2], [[0.5, 0.5, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"sklearn": sklearn.__version__, "bins": BINS, "cases": cases}, indent=1) + "\n"
    )
    print(f"wrote {OUT} ({len(cases)} cases, scikit-learn {sklearn.__version__})")


if __name__ == "__main__":
    main()
