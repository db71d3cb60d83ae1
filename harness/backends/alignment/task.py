"""Positive movie-review continuation (the classic TRL sentiment setup), with its data partitions.

The dataset's train split is a pool dealt round-robin into three disjoint parts: policy prompts,
reward-model reviews and judge reviews. Evaluation prompts are openings of test reviews (validation
for tuning trials), which no stage trains on; the reward model and the judge are also scored on
pairs built from those held-out reviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.backends.data import Splits, load_splits
from harness.suite.metrics import Metric
from harness.suite.tasks import TASKS, Record, Task

PARTS = ("policy", "reward", "judge")


@dataclass(frozen=True)
class Partitions:
    policy: list[Record]  # prompts for PPO rollouts / DPO pairs
    reward: list[Record]  # reviews the proxy reward model trains on
    judge: list[Record]  # reviews the judge trains on (disjoint from `reward`)
    held_out: list[Record]  # evaluation prompts and held-out pairs: test, or validation for trials
    held_out_split: str
    splits: Splits  # train is the pool the three parts were dealt from
    reward_judge_overlap: int

    @property
    def split_sizes(self) -> dict[str, int]:
        parts = {name: len(getattr(self, name)) for name in PARTS}
        return {**self.splits.split_sizes, **parts}


def partitions(dataset: Any, trial: bool) -> Partitions:
    splits = load_splits(dataset)
    parts: dict[str, list[Record]] = {name: [] for name in PARTS}
    for i, record in enumerate(splits.train):  # already shuffled with the split seed
        parts[PARTS[i % len(PARTS)]].append(record)
    shared = {r["text"] for r in parts["reward"]} & {r["text"] for r in parts["judge"]}
    if shared:  # the judge must not have seen what the reward model was trained on
        raise AssertionError(f"reward and judge partitions share {len(shared)} reviews")
    held_out, name = (splits.validation, "validation") if trial else (splits.test, "test")
    if not held_out:
        raise ValueError(f"datasets.{dataset.source}: splits.{name} is empty: evaluation needs it")
    return Partitions(**parts, held_out=held_out, held_out_split=name, splits=splits,
                      reward_judge_overlap=len(shared))  # fmt: skip


def opening(text: str, words: int) -> str:
    """The prompt: the first `words` words of a review."""
    return " ".join(text.split()[:words])


def preference_pairs(records: list[Record]) -> list[tuple[str, str]]:
    """(chosen, rejected) = (a positive review, a negative review), zipped in record order."""
    positive = [r["text"] for r in records if r["label"] == "positive"]
    negative = [r["text"] for r in records if r["label"] == "negative"]
    return list(zip(positive, negative, strict=False))


@TASKS.register_instance("positive_continuation")
class PositiveContinuation(Task):
    """Continue a review opening so that a sentiment judge finds it positive."""

    record_fields = ("text", "label")
    split_key = "text"
    metrics = (
        Metric("judge_score", True, "mean judge reward of generations on held-out prompts"),
        Metric(
            "win_rate", True, "share of prompts where the judge prefers the policy to the start"
        ),
        Metric(
            "indep_judge_score",
            True,
            "mean independent-judge score (VADER compound or a pretrained classifier)",
        ),
        Metric("indep_win_rate", True, "win_rate as the independent judge sees it"),
        Metric("kl", False, "KL(policy || start) per generation, estimated on held-out prompts"),
        Metric("proxy_reward", True, "mean reward-model (the optimised proxy) reward"),
        Metric("proxy_win_rate", True, "win_rate as the proxy reward model sees it"),
        Metric("proxy_judge_gap", False, "proxy_win_rate - win_rate: a reward-hacking signal"),
        Metric("gen_length", None, "mean generated tokens per held-out prompt (descriptive)"),
        Metric(
            "reward_accuracy", True, "share of held-out (positive, negative) pairs ranked right"
        ),
    )
    primary_metric = "judge_score"
    backend = "alignment"
