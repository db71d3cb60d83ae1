"""The suite's `executor:` block: where a suite's runs execute (never part of a run_id)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.suite.config import StrictModel


class ExecutorConfig(StrictModel):
    """A suite's optional `executor:` block (never part of a run_id); CLI flags override it."""

    kind: Literal["local", "ray"] = "local"
    # ray: "auto" (a running cluster on this machine), "ray://HOST:10001" (a remote one), or
    # None: start a local Ray instance for this command.
    address: str | None = None
    parallel: int | None = Field(None, ge=1)  # ray: runs in flight (default: what the cluster fits)
    gpus_per_run: float = Field(1.0, gt=0, le=1)  # < 1 packs runs on one GPU (speed not comparable)
    cpus_per_run: float = Field(1.0, gt=0)  # CPU runs (and the Ray task of a GPU run)
    max_retries: int = Field(1, ge=0)  # Ray retries of a run whose worker or node died
    artifacts: str | None = None  # a shared folder each run's folder is copied to after the run
