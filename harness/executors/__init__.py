"""Executors: where a plan's runs execute. The runner (harness/runner.py) schedules; an executor
starts runs and hands back their results.

`local` (the default) runs one isolated run process at a time on this machine; `ray` runs each
run as a Ray task that starts the same isolated run process on its node, up to `parallel` at once.
The scheduler's two calls: `submit(spec, run_dir)` returns a handle, `wait_any(handles)` returns
the first handle that finished with its outcome: a RunResult, or a RunBusyError when the run's
folder is held by another live run process (harness/runlock.py). An executor with only
`run(spec, run_dir)` (the older protocol) is scheduled one run at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from harness.config import StrictModel
from harness.registry import Registry
from harness.result import RunResult
from harness.spec import RunSpec


class Executor(Protocol):
    """Runs one spec and returns its result (raises RunBusyError when its folder is held)."""

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult: ...


class Scheduled(Executor, Protocol):
    """An executor the scheduler hands several runs at once; one with `run` only is wrapped to
    go one at a time (harness.executors.local.schedulable)."""

    parallel: int  # runs in flight at most

    def submit(self, spec: RunSpec, run_dir: Path) -> Any: ...

    def wait_any(self, handles: list[Any]) -> tuple[Any, RunResult | Exception]: ...


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


EXECUTORS: Registry[Any] = Registry("executor")


def build(config: ExecutorConfig) -> Scheduled:
    """The executor a config names (the ray module is imported only when it is used)."""
    if config.kind == "ray":
        from harness.extras import require

        require("ray")
        from harness.executors import ray as _  # noqa: F401 - registers itself
    from harness.executors import local as _local  # noqa: F401

    return EXECUTORS.get(config.kind)(config)
