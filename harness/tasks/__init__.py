"""Task types: how a record becomes a training example, and how a model is scored on a split."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.registry import Registry

Record = dict[str, str]


class Task:
    record_fields: ClassVar[tuple[str, ...]]
    split_key: ClassVar[str]  # the input field; records sharing it never straddle splits
    # More fields whose shared values keep records together (retrieval: a positive shared by two
    # anchors must not be a training pair and a test answer at once).
    group_fields: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    backend: ClassVar[str] = "sft"  # the training family (harness/backends.py) that runs it

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        """A prompt/completion pair (plain text, chat template already applied) for SFT."""
        raise NotImplementedError

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> dict[str, float]:
        raise NotImplementedError


TASKS: Registry[Task] = Registry("task")

from harness.tasks import qa, sentiment  # noqa: E402,F401  (registers the built-in tasks)
