"""Executors: where a plan's runs execute. The runner (harness/run/runner.py) schedules; an executor
starts runs and hands back their results.

`local` (the default) runs one isolated run process at a time on this machine; `ray` runs each
run as a Ray task that starts the same isolated run process on its node, up to `parallel` at once.
The scheduler's two calls: `submit(spec, run_dir)` returns a handle, `wait_any(handles)` returns
the first handle that finished with its outcome: a RunResult, or a RunBusyError when the run's
folder is held by another live run process (harness/run/runlock.py). An executor with only
`run(spec, run_dir)` (the older protocol) is scheduled one run at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness.store.result import RunResult
from harness.suite.executor_config import ExecutorConfig
from harness.suite.registry import Registry
from harness.suite.spec import RunSpec


class Executor(Protocol):
    """Runs one spec and returns its result (raises RunBusyError when its folder is held)."""

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult: ...


class Scheduled(Executor, Protocol):
    """An executor the scheduler hands several runs at once; one with `run` only is wrapped to
    go one at a time (harness.run.executors.local.schedulable)."""

    parallel: int  # runs in flight at most

    def submit(self, spec: RunSpec, run_dir: Path) -> Any: ...

    def wait_any(self, handles: list[Any]) -> tuple[Any, RunResult | Exception]: ...


EXECUTORS: Registry[Any] = Registry("executor")


def build(config: ExecutorConfig) -> Scheduled:
    """The executor a config names (the ray module is imported only when it is used)."""
    if config.kind == "ray":
        from harness.run.executors import ray as _  # noqa: F401 - registers itself
    from harness.run.executors import local as _local  # noqa: F401

    return EXECUTORS.get(config.kind)(config)
