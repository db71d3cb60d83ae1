"""Tasks the SFT backend trains: each turns a record into a prompt/completion pair and scores a
model on records. Each file registers one task in harness.suite.tasks.TASKS (imported here)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.suite.registry import import_submodules
from harness.suite.tasks import Record, Task


class SftTask(Task):
    backend: ClassVar[str] = "sft"
    # A classification task's classes, the values of its records' `label` field (empty: not a
    # classification task); methods that train a classifier (feature_based) read them.
    labels: ClassVar[tuple[str, ...]] = ()

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        """A prompt/completion pair (plain text, chat template already applied) for SFT."""
        raise NotImplementedError

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> dict[str, float]:
        raise NotImplementedError


import_submodules(__name__)
