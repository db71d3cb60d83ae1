"""Execute a plan's runs, each in its own subprocess, and ingest every finished run.

A crash, OOM or hang in one run cannot take down the suite or pollute the next run's memory
measurement. Finished runs are skipped on a re-run (resume); `force` re-runs them. Runs the plan
says must not run (model or data unavailable, over budget) and runs whose upstream stage did not
end `ok` are recorded with that status and reason instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from harness import runlock, store
from harness.launch import Launched, launch
from harness.plan import Plan, PlannedRun
from harness.result import FINAL_STATUSES, RESULT_FILE, RunResult, now, read_result, write_atomic
from harness.spec import RunSpec

DEFAULT_RESULTS = Path("results")


class Executor(Protocol):
    """Runs one spec and returns its result. Local subprocesses now; a cluster later."""

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult: ...


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class LocalSubprocessExecutor:
    python: str = sys.executable
    poll_s: float = 0.5

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


@dataclass
class SuiteReport:
    executed: list[RunResult] = field(default_factory=list)
    skipped: list[RunResult] = field(default_factory=list)  # finished earlier (resume)

    @property
    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.executed + self.skipped:
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts


def upstream_problem(spec: RunSpec, results_dir: Path) -> str | None:
    """Why `spec` cannot start: a run it starts from did not end `ok` (None when all did)."""
    for role, run_id in (spec.upstream or {}).items():
        result = read_result(results_dir / "runs" / run_id)
        status = result.status if result else "not run"
        if status != "ok":
            why = result.train_info.reason if result else None
            return f"upstream {role} run {run_id} is {status}" + (f" ({why})" if why else "")
    return None


def run_planned(
    run: PlannedRun,
    results_dir: Path,
    db_path: Path,
    executor: Executor,
    *,
    force: bool = False,
) -> tuple[RunResult, bool]:
    """One planned run: (its result, whether it ran now). A finished run is read back and
    re-ingested (the database stays whole); a run that must not start is recorded instead."""
    spec = run.spec
    run_dir = results_dir / "runs" / spec.run_id
    previous = read_result(run_dir)
    if previous and not force and previous.status in FINAL_STATUSES:
        store.ingest(db_path, previous, run_dir / RESULT_FILE)  # idempotent
        return previous, False
    preset = run.preset
    problem = None if preset else upstream_problem(spec, results_dir)
    if preset or problem:
        status, reason = preset or ("skipped", problem)
        result = RunResult.without_run(spec, status, reason=reason, started_at=now())
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        try:
            with run_progress(spec.label) as progress:
                result = executor.run(spec, run_dir, on_progress=progress)
        except runlock.RunBusyError as exc:  # recorded; its folder belongs to the live process
            result = RunResult.without_run(spec, "skipped", reason=str(exc), started_at=now())
            store.ingest(db_path, result, run_dir / RESULT_FILE)
            return result, True
    write_atomic(run_dir / RESULT_FILE, result)
    store.ingest(db_path, result, run_dir / RESULT_FILE)
    return result, True


def run_plan(
    plan: Plan,
    *,
    results_dir: Path = DEFAULT_RESULTS,
    db_path: Path | None = None,
    force: bool = False,
    executor: Executor | None = None,
) -> SuiteReport:
    """Run every planned run (skipping finished ones), ingesting each result as soon as it exists."""
    executor = executor or LocalSubprocessExecutor()
    db_path = db_path or results_dir / "ftbench.duckdb"
    store.record_suite(db_path, plan.suite, plan.source)
    report = SuiteReport()
    bar = tqdm(plan.runs, desc=f"suite {plan.suite.name}", unit="run", position=0)
    for run in bar:
        bar.set_postfix_str(run.spec.label)
        result, ran = run_planned(run, results_dir, db_path, executor, force=force)
        (report.executed if ran else report.skipped).append(result)
        if ran and result.status != "ok":
            tqdm.write(f"[{result.status}] {run.spec.label}: {result.train_info.reason}")
    return report
