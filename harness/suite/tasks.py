"""Tasks: what a dataset's records are, which training backend runs them, and what they report.

A task names its record fields, the fields that keep records together across splits, its metrics
(each with its direction) and its backend (harness/backends/). Tasks live with their backend and
register themselves here; a backend adds what it needs to train and score them (e.g. the SFT
backend's prompt/completion formatting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from harness.suite.config import StrictModel
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
    # What a dataset's `task_options:` may set (None: the task takes none).
    Options: ClassVar[type[StrictModel] | None] = None

    def configure(
        self, options: Any, records: Callable[[], dict[str, list[Record]]] | None
    ) -> Task:
        """This task as a dataset's validated task_options set it up (`records`: the dataset's
        splits, read only when the options leave something to the data, e.g. the label set)."""
        return self

    def check_records(
        self, parts: dict[str, list[Record]], describe: Callable[[str, str], str]
    ) -> None:
        """Refuse data this task cannot learn from, before anything runs; `describe(part,
        field)` says where a field's values come from (a file's column)."""

    def split_checks(self, splits: dict[str, list[Record]]) -> dict[str, Any]:
        """Facts about the splits a run records with its data checks (harness.checks)."""
        return {}

    @classmethod
    def metric_names(cls) -> list[str]:
        return [m.name for m in cls.metrics]

    @classmethod
    def metric(cls, name: str) -> Metric | None:
        return next((m for m in cls.metrics if m.name == name), None)


TASKS: Registry[Task] = Registry("task")


def task_for(dataset: Any, records: Callable[[], dict[str, list[Record]]] | None = None) -> Task:
    """The task a dataset spec runs: the registered task configured by its `task_options`.
    `records` gives the dataset's splits where a setting comes from the data (a classifier's
    label set); None: configured without the data (what data is checked against)."""
    task = TASKS.get(dataset.task)
    if task.Options is None:
        return task
    return task.configure(task.Options.model_validate(dataset.task_options or {}), records)


def higher_is_better(task: str, metric: str) -> bool | None:
    """The direction of `metric` as `task` declares it (None: unknown task or metric, or a
    descriptive number)."""
    if task not in TASKS:
        return None
    found = TASKS.get(task).metric(metric)
    return found.higher_is_better if found else None
