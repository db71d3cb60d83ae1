"""ftbench: a benchmarking harness and leaderboard for fine-tuning language models on a T4 budget.

The public API is a few names over the modules that implement them:

    import harness
    plan = harness.make_plan("smoke", only="method=lora")   # what would run, with its run_ids
    report = harness.run("smoke", only="method=lora")       # run it (finished runs are reused)
    board = harness.leaderboard("results/ftbench.duckdb", "smoke")
    harness.tune("tune_smoke")                              # Optuna studies, then tuned re-runs

Data flow, one folder each: suite/ (what a user declares) -> plan/ (how each run will run) ->
run/ (each run in its own process; the backend does the training, backends/) -> store/ (DuckDB:
results, queries, statistics) -> show/ and the dashboard (views of the store). Imports go down
that flow only (import-linter contracts in pyproject.toml). Imports here are lazy: a run process
pays only for what it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.plan.plan import Only, Plan
    from harness.run.runner import Executor, SuiteReport
    from harness.suite.suite_file import Suite
    from harness.tuning.study import TuneReport

__all__ = [
    "frontier_runs", "frontier_suites", "leaderboard", "load_suite", "make_plan", "memory_checks",
    "run", "tune",
]  # fmt: skip


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite file (or the suite whose `name:` is given), parsed and checked."""
    from harness.suite.suite_file import load_suite, locate

    return load_suite(locate(name_or_path))


def make_plan(
    suite: str | Path, *, only: Only | str | None = None, availability: bool = True
) -> Plan:
    """How every run of a suite (or lock file) will run: budget verdicts and adjustments,
    upstream stages, availability. See harness.plan.plan.make_plan."""
    from harness.plan.plan import make_plan

    return make_plan(suite, only=only, availability=availability)


def run(
    suite: str | Path | Plan,
    *,
    only: Only | str | None = None,
    results: str | Path = "results",
    db: str | Path | None = None,
    force: bool = False,
    executor: Executor | None = None,
) -> SuiteReport:
    """Plan and run a suite; each run in its own process, each result ingested as it finishes."""
    from harness.models.offline import configure_offline_mode
    from harness.plan.plan import Plan
    from harness.run.runner import run_plan

    configure_offline_mode()
    plan = suite if isinstance(suite, Plan) else make_plan(suite, only=only)
    return run_plan(
        plan, results_dir=Path(results), db_path=Path(db) if db else None, force=force,
        executor=executor,
    )  # fmt: skip


def tune(
    suite: str | Path | Plan,
    *,
    only: Only | str | None = None,
    results: str | Path = "results",
    db: str | Path | None = None,
    final_runs: bool = True,
    executor: Executor | None = None,
) -> TuneReport:
    """Optuna studies for the suite's cells with a search space, then tuned re-runs."""
    from harness.models.offline import configure_offline_mode
    from harness.plan.plan import Plan
    from harness.tuning.study import tune_plan

    configure_offline_mode()
    plan = suite if isinstance(suite, Plan) else make_plan(suite, only=only)
    results = Path(results)
    return tune_plan(
        plan, results_dir=results, db_path=Path(db) if db else results / "ftbench.duckdb",
        final_runs=final_runs, executor=executor,
    )  # fmt: skip


def leaderboard(db: str | Path, suite: str, **filters: Any):
    """The leaderboard frame `ftbench show` prints and the dashboard shows (harness.store)."""
    from harness.store import leaderboard

    return leaderboard(db, suite, **filters)


def frontier_suites(db: str | Path) -> list[str]:
    """Suites that stored at least one alignment policy run."""
    from harness.backends.alignment.frontier import suites_with_policies

    return suites_with_policies(db)


def frontier_runs(db: str | Path, suite: str):
    """A suite's alignment policy runs with KL, judge score, win rate, family and setting: the
    points of the reward-KL frontier (`ftbench show` summarises the same frame)."""
    from harness.backends.alignment.frontier import policy_runs

    return policy_runs(db, suite)


def memory_checks(db: str | Path):
    """Predicted against measured memory of stored runs, one row per run and quantity (the frame
    `ftbench memcheck` prints)."""
    from harness.show.memcheck import frame

    return frame(db)
