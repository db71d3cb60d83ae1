"""The alignment tasks, with their data partitions.

- `positive_continuation`: continue a movie-review opening positively (the classic TRL sentiment
  setup); the reward models learn from (positive review, negative review) pairs, DPO and its kin
  from two samples of the start policy ranked by the proxy.
- `preference_pairs`: the user's (prompt, chosen, rejected) rows (the `files` source); the reward
  models learn from them, and so do DPO/KTO/ORPO/SimPO directly.

A task says what a prompt is, which (chosen, rejected) texts a reward model learns from, and where
the offline methods' pairs come from (`pair_source`, a name in methods/preference_data.py's
PAIR_SOURCES). Everything else (stages, judge, KL to the start, the frontier) is shared.

The dataset's train split is a pool dealt round-robin into three disjoint parts: policy prompts,
reward-model records and judge records (records sharing the task's split key stay together).
Evaluation prompts come from test records (validation for tuning trials), which no stage trains
on; the reward model and the judge are also scored on pairs built from those held-out records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.backends.data import DataUnavailableError, Splits, load_splits
from harness.suite.metrics import Metric
from harness.suite.tasks import TASKS, Record, Task, task_for

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
    key = task_for(dataset).split_key
    groups: dict[
        str, list[Record]
    ] = {}  # records sharing an input (a prompt's pairs) stay together
    for record in splits.train:  # already shuffled with the split seed
        groups.setdefault(record[key], []).append(record)
    parts: dict[str, list[Record]] = {name: [] for name in PARTS}
    for i, group in enumerate(groups.values()):
        parts[PARTS[i % len(PARTS)]].extend(group)
    empty = [name for name in PARTS if not parts[name]]
    if empty:
        raise ValueError(
            f"datasets.{dataset.source}: splits.train holds {len(groups)} distinct {key!r} "
            f"values, too few to deal into the {', '.join(PARTS)} partitions ({', '.join(empty)} "
            "empty): raise splits.train"
        )
    shared = {r[key] for r in parts["reward"]} & {r[key] for r in parts["judge"]}
    if shared:  # the judge must not have seen what the reward model was trained on
        raise AssertionError(f"reward and judge partitions share {len(shared)} {key!r} values")
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


POLICY_METRICS = (
    Metric("judge_score", True, "mean judge reward of generations on held-out prompts"),
    Metric("win_rate", True, "share of prompts where the judge prefers the policy to the start"),
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
)


class AlignmentTask(Task):
    """What the alignment backend asks of a task: its prompts, the pairs its reward models learn
    from, and where DPO/KTO/ORPO/SimPO get theirs."""

    backend = "alignment"
    primary_metric = "judge_score"
    # How the offline preference methods get (prompt, chosen, rejected) rows: a name in
    # harness/backends/alignment/methods/preference_data.py's PAIR_SOURCES.
    pair_source: ClassVar[str]

    def prompt(self, record: Record, prompt_words: int) -> str:
        """The text a policy continues (`prompt_words`: the policy params' prompt length)."""
        raise NotImplementedError

    def reward_pairs(self, records: list[Record]) -> list[tuple[str, str]]:
        """(chosen text, rejected text) pairs a reward model learns from and is scored on: whole
        texts, as it later scores a prompt with a policy's continuation."""
        raise NotImplementedError


@TASKS.register_instance("positive_continuation")
class PositiveContinuation(AlignmentTask):
    """Continue a review opening so that a sentiment judge finds it positive."""

    record_fields = ("text", "label")
    split_key = "text"
    metrics = (
        *POLICY_METRICS,
        Metric(
            "reward_accuracy", True, "share of held-out (positive, negative) pairs ranked right"
        ),
    )
    pair_source = "start_samples"

    def prompt(self, record: Record, prompt_words: int) -> str:
        return opening(record["text"], prompt_words)

    def reward_pairs(self, records: list[Record]) -> list[tuple[str, str]]:
        return preference_pairs(records)


@TASKS.register_instance("preference_pairs")
class PreferencePairs(AlignmentTask):
    """The user's preference data: continue each prompt the way its `chosen` response is
    preferred to its `rejected` one. The proxy and the judge learn from (prompt + chosen,
    prompt + rejected) on disjoint rows; the offline methods train on the policy rows' pairs as
    given; every policy is scored on held-out prompts by the judge, with its KL to the start."""

    record_fields = ("prompt", "chosen", "rejected")
    split_key = "prompt"  # the pairs of one prompt stay in one split and one partition
    metrics = (
        *POLICY_METRICS,
        Metric(
            "reward_accuracy",
            True,
            "share of held-out (prompt + chosen, prompt + rejected) pairs ranked right",
        ),
    )
    pair_source = "data"

    def prompt(self, record: Record, prompt_words: int) -> str:
        return record["prompt"]

    def reward_pairs(self, records: list[Record]) -> list[tuple[str, str]]:
        # The policy continues the prompt's text: a response follows it as written.
        return [(r["prompt"] + r["chosen"], r["prompt"] + r["rejected"]) for r in records]

    def check_records(
        self, parts: dict[str, list[Record]], describe: Callable[[str, str], str]
    ) -> None:
        for part, rows in parts.items():
            for index, row in enumerate(rows):
                if row["chosen"] == row["rejected"]:
                    raise DataUnavailableError(
                        f"{describe(part, 'chosen')} row {index + 1} is the same text as "
                        f"{describe(part, 'rejected')} ({row['chosen']!r:.60}): a preference "
                        "pair needs two different responses; fix or drop the row"
                    )
