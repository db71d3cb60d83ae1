"""Strict pydantic base for everything read from a suite file.

Unknown keys are errors, and a string is never silently turned into a number: PyYAML reads
`1e-4` as a string, so a float field must reject it (write `1.0e-4`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EntryFieldError(ValueError):
    """A problem in one of a method entry's own fields (its `tapt` block, say), not in its params.
    The message starts with that field's path inside the entry ("tapt.steps: ..."), so the suite
    names it as `methods.<entry>.<message>`."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def optional(**kwargs: Any) -> Any:
    """A field added after runs were recorded: while it is unset (None) it is left out of the
    model's dump, so the run_ids of specs that do not use it stay what they were (a spec's dump
    is its hash). Give new fields of method params and config blocks this default."""
    return Field(None, exclude_if=lambda value: value is None, **kwargs)
