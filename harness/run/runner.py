"""Schedule a plan's runs on an executor, and ingest every finished run.

Each run executes in its own process (harness/run/executors/): a crash, OOM or hang in one run cannot
take down the suite or pollute the next run's memory measurement. Finished runs are skipped on a
re-run (resume); `force` re-runs them. Runs the plan says must not run (model or data
unavailable, over budget) and runs whose upstream stage did not end `ok` are recorded with that
status and reason instead. The scheduler submits every run whose upstream stages are done, up to
the executor's `parallel` at once, and ingests results in the order they complete: this process
is the only DuckDB writer, whatever executes the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness import store
from harness.plan.plan import Plan, PlannedRun
from harness.run import runlock
from harness.run.executors import Executor
from harness.run.executors.local import LocalSubprocessExecutor, run_progress, schedulable
from harness.store.result import (
    FINAL_STATUSES,
    RESULT_FILE,
    RunResult,
    now,
    read_result,
    write_atomic,
)
from harness.suite.spec import RunSpec

__all__ = ["Executor", "LocalSubprocessExecutor", "run_plan", "run_planned", "run_progress"]

DEFAULT_RESULTS = Path("results")


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


def prepare(
    run: PlannedRun, results_dir: Path, db_path: Path, *, force: bool = False
) -> tuple[RunResult, bool] | None:
    """A planned run's (result, whether it was recorded now) when it need not execute, None when
    it must: a finished run is read back and re-ingested (the database stays whole); a run that
    must not start is recorded with its status and reason."""
    spec = run.spec
    run_dir = results_dir / "runs" / spec.run_id
    previous = read_result(run_dir)
    if previous and not force and previous.status in FINAL_STATUSES:
        store.ingest(db_path, previous, run_dir / RESULT_FILE)  # idempotent
        return previous, False
    problem = None if run.preset else upstream_problem(spec, results_dir)
    if not (run.preset or problem):
        return None
    status, reason = run.preset or ("skipped", problem)
    result = RunResult.without_run(spec, status, reason=reason, started_at=now())
    return record(run, result, results_dir, db_path), True


def record(
    run: PlannedRun, outcome: RunResult | Exception, results_dir: Path, db_path: Path
) -> RunResult:
    """Write and ingest what a run ended with. A run held by another live process is recorded
    `skipped` in the database only: its folder belongs to that process."""
    spec = run.spec
    run_dir = results_dir / "runs" / spec.run_id
    if isinstance(outcome, runlock.RunBusyError):
        result = RunResult.without_run(spec, "skipped", reason=str(outcome), started_at=now())
        store.ingest(db_path, result, run_dir / RESULT_FILE)
        return result
    if isinstance(outcome, Exception):
        raise outcome
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / RESULT_FILE, outcome)
    store.ingest(db_path, outcome, run_dir / RESULT_FILE)
    return outcome


def run_planned(
    run: PlannedRun,
    results_dir: Path,
    db_path: Path,
    executor: Executor,
    *,
    force: bool = False,
) -> tuple[RunResult, bool]:
    """One planned run, waited for: (its result, whether it ran now)."""
    done = prepare(run, results_dir, db_path, force=force)
    if done is not None:
        return done
    executor = schedulable(executor)
    handle = executor.submit(run.spec, results_dir / "runs" / run.spec.run_id)
    _, outcome = executor.wait_any([handle])
    return record(run, outcome, results_dir, db_path), True


def default_executor(plan: Plan) -> Executor:
    """The suite's `executor:` block when it has one, else the local executor."""
    if plan.suite.executor is None:
        return LocalSubprocessExecutor()
    from harness.run.executors import build

    return build(plan.suite.executor)


def run_plan(
    plan: Plan,
    *,
    results_dir: Path = DEFAULT_RESULTS,
    db_path: Path | None = None,
    force: bool = False,
    executor: Executor | None = None,
) -> SuiteReport:
    """Run every planned run (skipping finished ones), ingesting each result as soon as it exists.

    A run is submitted once the runs it starts from (its upstream stages in this plan) are done;
    up to `executor.parallel` runs are in flight. With one at a time this is the plan's order."""
    executor = schedulable(executor or default_executor(plan))
    db_path = db_path or results_dir / "ftbench.duckdb"
    store.record_suite(db_path, plan.suite, plan.source)
    report = SuiteReport()
    waiting = list(plan.runs)
    open_ids = {run.spec.run_id for run in waiting}  # not finished yet in this invocation
    in_flight: dict[Any, PlannedRun] = {}
    bar = tqdm(total=len(waiting), desc=f"suite {plan.suite.name}", unit="run", position=0)
    while waiting or in_flight:
        for run in list(waiting):
            if len(in_flight) >= executor.parallel:
                break
            if open_ids & set((run.spec.upstream or {}).values()):
                continue  # an upstream stage is still waiting or running
            waiting.remove(run)
            done = prepare(run, results_dir, db_path, force=force)
            if done is not None:
                _finish(report, bar, run, *done, open_ids)
                continue
            bar.set_postfix_str(run.spec.label)
            run_dir = results_dir / "runs" / run.spec.run_id
            in_flight[executor.submit(run.spec, run_dir)] = run
        if not in_flight:
            continue
        handle, outcome = executor.wait_any(list(in_flight))
        run = in_flight.pop(handle)
        _finish(report, bar, run, record(run, outcome, results_dir, db_path), True, open_ids)
    bar.close()
    return report


def _finish(
    report: SuiteReport, bar: Any, run: PlannedRun, result: RunResult, ran: bool, open_ids: set
) -> None:
    open_ids.discard(run.spec.run_id)
    (report.executed if ran else report.skipped).append(result)
    bar.update(1)
    if ran and result.status != "ok":
        tqdm.write(f"[{result.status}] {run.spec.label}: {result.train_info.reason}")
