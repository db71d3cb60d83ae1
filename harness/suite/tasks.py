"""Tasks: what a dataset's records are, which training backend runs them, and what they report.

A task names its record fields, the fields that keep records together across splits, its metrics
(each with its direction) and its backend (harness/backends/). Tasks live with their backend and
register themselves here; a backend adds what it needs to train and score them (e.g. the SFT
backend's prompt/completion formatting).
"""

from __future__ import annotations

from typing import ClassVar

from harness.suite.metrics import Metric
from harness.suite.registry import Registry

Record = dict[str, str]


class Task:
    record_fields: ClassVar[tuple[str, ...]]
    split_key: ClassVar[str]  # the input field; records sharing it never straddle splits
    # More fields whose shared values keep records together (retrieval: a positive shared by two
    # anchors must not be a training pair and a test answer at once).
    group_fields: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[Metric, ...]]
    primary_metric: ClassVar[str]
    backend: ClassVar[str]  # the training family (harness/backends/<name>) that runs it

    @classmethod
    def metric_names(cls) -> list[str]:
        return [m.name for m in cls.metrics]

    @classmethod
    def metric(cls, name: str) -> Metric | None:
        return next((m for m in cls.metrics if m.name == name), None)


TASKS: Registry[Task] = Registry("task")


def higher_is_better(task: str, metric: str) -> bool | None:
    """The direction of `metric` as `task` declares it (None: unknown task or metric, or a
    descriptive number)."""
    if task not in TASKS:
        return None
    found = TASKS.get(task).metric(metric)
    return found.higher_is_better if found else None
