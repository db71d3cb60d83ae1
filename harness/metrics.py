"""Metric definitions: every metric declares whether higher is better (the leaderboard sorts by it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, "share of test examples whose label scores highest"),
        Metric("macro_f1", True, "F1 averaged over labels (robust to label imbalance)"),
        Metric("eval_loss", False, "mean NLL per completion token on the test split"),
        Metric("perplexity", False, "exp(eval_loss)"),
        Metric("ndcg@10", True, "retrieval: normalized discounted cumulative gain of the top 10"),
        Metric(
            "mrr@10", True, "retrieval: mean reciprocal rank of the first relevant in the top 10"
        ),
        Metric("recall@10", True, "retrieval: share of relevant documents found in the top 10"),
        # Preference alignment (harness/alignment); gen_length is descriptive, so it has no entry.
        Metric("judge_score", True, "mean judge reward of generations on held-out prompts"),
        Metric(
            "win_rate", True, "share of prompts where the judge prefers the policy to the start"
        ),
        Metric("kl", False, "KL(policy || start) per generation, estimated on held-out prompts"),
        Metric("proxy_reward", True, "mean reward-model (the optimised proxy) reward"),
        Metric("proxy_win_rate", True, "win_rate as the proxy reward model sees it"),
        Metric("proxy_judge_gap", False, "proxy_win_rate - win_rate: a reward-hacking signal"),
        Metric(
            "reward_accuracy", True, "share of held-out (positive, negative) pairs ranked right"
        ),
    )
}


def higher_is_better(name: str) -> bool | None:
    metric = METRICS.get(name)
    return metric.higher_is_better if metric else None


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
