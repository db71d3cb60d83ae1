"""Metrics: what a task reports, each with its direction, and the scoring functions tasks share.

A task declares its own metrics (harness/suite/tasks.py); this module only holds the definition type and
the few metrics more than one task reports, so a new task never edits a central table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    # The leaderboard sorts by it; None for a descriptive number (e.g. a generation length).
    higher_is_better: bool | None
    description: str


ACCURACY = Metric("accuracy", True, "share of test examples whose label scores highest")
MACRO_F1 = Metric("macro_f1", True, "F1 averaged over labels (robust to label imbalance)")
EVAL_LOSS = Metric("eval_loss", False, "mean NLL per completion token on the evaluated split")
PERPLEXITY = Metric("perplexity", False, "exp(eval_loss)")


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores)


def perplexity(mean_nll: float) -> float:
    return math.exp(min(mean_nll, 700.0))  # exp overflows past ~709
