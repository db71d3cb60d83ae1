"""The local executor: one isolated run process at a time, on this machine.

Each run is a process of its own (harness/run/launch.py) in a session of its own: a crash, OOM or
hang in one run cannot take down the suite or pollute the next run's memory measurement; a
timeout kills its whole process group.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.run import runlock
from harness.run.executors import EXECUTORS, ExecutorConfig
from harness.run.launch import Launched, launch
from harness.store.result import RESULT_FILE, RunResult, now, read_result
from harness.suite.spec import RunSpec

# Set in a run process's environment when it must end with the process that started it (a Ray
# worker: a retry on another worker needs the run's lock, harness/run/worker.py).
DIE_WITH_PARENT = "FTBENCH_DIE_WITH_PARENT"


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class LocalSubprocessExecutor:
    python: str = sys.executable
    poll_s: float = 0.5
    die_with_parent: bool = False

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult:
        run_dir.mkdir(parents=True, exist_ok=True)
        if runlock.holder(run_dir):  # its process outlived the runner that started it
            raise runlock.busy(run_dir)
        for stale in (RESULT_FILE, "progress.json"):
            (run_dir / stale).unlink(missing_ok=True)
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        log_path = run_dir / "worker.log"
        started = now()
        deadline = time.monotonic() + spec.training.timeout_s
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        if self.die_with_parent:
            env[DIE_WITH_PARENT] = "1"
        # Its own session and process group: a timeout kills it with all its children.
        proc = launch(self.python, spec_path, run_dir, log_path, env)
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    _kill(proc)
                    return RunResult.without_run(
                        spec, "timeout", reason=f"exceeded timeout_s={spec.training.timeout_s}",
                        traceback=_tail(log_path), started_at=started,
                    )  # fmt: skip
                if on_progress is not None:
                    on_progress(run_dir / "progress.json")
                time.sleep(self.poll_s)
        except BaseException:  # Ctrl-C or a crash of the runner: leave no orphan behind
            _kill(proc)
            raise
        result = read_result(run_dir)
        if result is not None:
            return result
        code = proc.wait()
        if code == runlock.BUSY_EXIT:  # another runner started the same run a moment earlier
            raise runlock.busy(run_dir)
        if code == -signal.SIGKILL:
            status, reason = (
                "oom",
                "the run process was killed (SIGKILL): most likely out of host memory",
            )
        else:
            status, reason = (
                "failed",
                f"the run process died with exit code {code} and wrote no result",
            )
        return RunResult.without_run(
            spec, status, reason=reason, traceback=_tail(log_path), started_at=started
        )


@dataclass
class OneAtATime:
    """The scheduler's interface (submit / wait_any) over an executor that only has `run`: a
    submitted run starts when it is waited for, so runs go one at a time in submission order
    (the plan's order), each with a progress bar."""

    inner: Any
    parallel: int = 1
    _handles: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _submitted: dict[int, tuple[RunSpec, Path]] = field(default_factory=dict, repr=False)

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult:
        return self.inner.run(spec, run_dir, on_progress=on_progress)

    def submit(self, spec: RunSpec, run_dir: Path) -> Any:
        handle = next(self._handles)
        self._submitted[handle] = (spec, run_dir)
        return handle

    def wait_any(self, handles: list[Any]) -> tuple[Any, RunResult | Exception]:
        handle = handles[0]
        spec, run_dir = self._submitted.pop(handle)
        try:
            with run_progress(spec.label) as progress:
                return handle, self.inner.run(spec, run_dir, on_progress=progress)
        except runlock.RunBusyError as exc:
            return handle, exc


def schedulable(executor: Any) -> Any:
    """The executor itself when it schedules (submit / wait_any), else one run at a time."""
    return executor if hasattr(executor, "submit") else OneAtATime(executor)


@EXECUTORS.register("local")
def _local(config: ExecutorConfig) -> OneAtATime:
    return OneAtATime(LocalSubprocessExecutor())  # its memory and speed figures are its own


def _kill(proc: Launched) -> None:
    """Kill the run's process group (everything it started); the process alone if it has not
    made its group yet (a forked run calls setsid first thing)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


class _RunProgress:
    """A per-run bar fed by the worker's progress.json (steps done / max steps)."""

    def __init__(self, label: str) -> None:
        self.bar = tqdm(total=None, desc=f"  {label}", unit="step", position=1, leave=False)

    def __call__(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if self.bar.total != state["max_steps"]:
            self.bar.reset(total=state["max_steps"])
        if self.bar.n != state["step"]:
            self.bar.update(state["step"] - self.bar.n)


@contextlib.contextmanager
def run_progress(label: str) -> Iterator[_RunProgress]:
    progress = _RunProgress(label)
    try:
        yield progress
    finally:
        progress.bar.close()
