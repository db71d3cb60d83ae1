"""Positive movie-review continuation (the classic TRL sentiment setup), with its data partitions.

The dataset's train split is a pool dealt round-robin into three disjoint parts: policy prompts,
reward-model reviews and judge reviews. Evaluation prompts are openings of test reviews (validation
for tuning trials), which no stage trains on; the reward model and the judge are also scored on
pairs built from those held-out reviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import checks
from harness.data import load_splits
from harness.tasks import TASKS, Record, Task

PARTS = ("policy", "reward", "judge")


@dataclass(frozen=True)
class Partitions:
    policy: list[Record]  # prompts for PPO rollouts / DPO pairs
    reward: list[Record]  # reviews the proxy reward model trains on
    judge: list[Record]  # reviews the judge trains on (disjoint from `reward`)
    held_out: list[Record]  # evaluation prompts and held-out pairs: test, or validation for trials
    held_out_split: str
    fingerprint: str
    split_sizes: dict[str, int]
    data_checks: dict[str, Any]


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
    data_checks = {
        **checks.split_overlap(splits.as_dict(), "text"),  # pool vs validation / test reviews
        "reward_judge_overlap": len(shared),
    }
    sizes = {
        **{k: len(v) for k, v in splits.as_dict().items()},
        **{k: len(v) for k, v in parts.items()},
    }
    return Partitions(**parts, held_out=held_out, held_out_split=name,
                      fingerprint=splits.fingerprint, split_sizes=sizes,
                      data_checks=data_checks)  # fmt: skip


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
        "judge_score", "win_rate", "kl", "proxy_reward", "proxy_win_rate", "proxy_judge_gap",
        "gen_length", "reward_accuracy",
    )  # fmt: skip
    primary_metric = "judge_score"
    backend = "alignment"
