"""Strict pydantic base for everything read from a suite file.

Unknown keys are errors, and a string is never silently turned into a number: PyYAML reads
`1e-4` as a string, so a float field must reject it (write `1.0e-4`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
