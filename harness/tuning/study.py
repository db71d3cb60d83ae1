"""`ftbench tune`: equal Optuna budgets per cell, trials as isolated runs, resumable studies.

Every cell (method x model x dataset) gets one study in a journal file under
results/optuna/<suite>/, created with load_if_exists, so a killed `ftbench tune` continues where it
stopped. Each trial is an ordinary run (own process, own result.json) scored on the validation
split; the best parameters of each cell are then re-run on every suite seed and scored once on the
test split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness import store
from harness.plan.plan import Plan, PlannedRun, Planner, plan_specs
from harness.run.executors.local import schedulable
from harness.run.runner import (
    Executor,
    SuiteReport,
    default_executor,
    prepare,
    record,
    run_plan,
)
from harness.run.trial import open_storage
from harness.store.result import FINAL_STATUSES, RunResult, read_result
from harness.suite.search_space import PrunerConfig, SearchDim, TrialRef, TuneConfig, TunedRef
from harness.suite.spec import RunSpec
from harness.suite.suite_file import Suite, with_values
from harness.suite.tasks import higher_is_better

_COUNTED_STATE = {"complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}


@dataclass
class Cell:
    base: RunSpec  # the cell's spec as planned, trained with the tuning seed
    space: dict[str, SearchDim]
    metric: str

    @property
    def direction(self) -> str:
        up = higher_is_better(self.base.dataset.task, self.metric)
        return "maximize" if up is not False else "minimize"


@dataclass
class TuneReport:
    studies: dict[str, Any] = field(default_factory=dict)  # cell -> optuna Study
    final: SuiteReport | None = None
    notes: list[str] = field(default_factory=list)


def tune_cells(plan: Plan, planner: Planner | None = None) -> list[Cell]:
    """One cell per method x model x dataset of the plan whose method declares a search space.
    A cell over budget at its defaults is still tuned: sampled values that do not fit are pruned
    without running, and others (a smaller batch, a lower rank) may fit."""
    suite = plan.suite
    assert suite.tune is not None
    planner = planner or Planner()
    cells: dict[str, Cell] = {}
    for run in plan.runs:
        entry = suite.methods.get(run.spec.method_key)
        if run.stage or run.unavailable or not entry or not entry.search or run.spec.cell in cells:
            continue
        base = planner.plan(with_values(run.requested, {}, seed=suite.tune.seed))[-1].spec
        metric = suite.tune.metric or run.spec.dataset.headline_metric
        cells[run.spec.cell] = Cell(base, entry.search, metric)
    return list(cells.values())


def study_file(results_dir: Path, suite: str, cell: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", cell)
    return results_dir / "optuna" / suite / f"{safe}.journal"


def _open_study(
    suite: Suite, cell: Cell, storage: Any, pruner: PrunerConfig, max_reports: int, parallel: bool
):
    import optuna

    return optuna.create_study(
        study_name=f"{suite.name}:{cell.base.cell}",
        storage=storage,
        # trials in flight at once: TPE treats the running ones as bad so it does not sample
        # the same point N times (constant liar)
        sampler=suite.tune.sampler.build(constant_liar=parallel),
        pruner=pruner.build(max_reports),
        direction=cell.direction,
        load_if_exists=True,
    )


def _tell(study: Any, storage: Any, number: int, result: RunResult, metric: str) -> None:
    """Close a trial from its run's result: complete with the validation value, or pruned/fail."""
    from optuna.trial import TrialState

    status, reason = result.status, result.train_info.reason
    trial = _trial_handle(study, storage, number)
    trial.set_user_attr("status", status)
    if reason:
        trial.set_user_attr("reason", reason[:500])
    if status == "ok":
        study.tell(number, result.metric("validation", metric))
    elif status in ("pruned", "over_budget"):
        # Over budget counts as pruned, not failed: TPE ranks pruned trials last (it ignores
        # failed ones), so the sampler learns to leave the region that does not fit.
        study.tell(number, state=TrialState.PRUNED)
    else:
        study.tell(number, state=TrialState.FAIL)


def _close(
    study: Any, storage: Any, number: int, run: PlannedRun, result: RunResult, metric: str
) -> None:
    _tell(study, storage, number, result, metric)
    if result.status not in ("ok", "pruned"):
        tqdm.write(f"[{result.status}] {run.spec.label}: {result.train_info.reason}")


def _trial_handle(study: Any, storage: Any, number: int) -> Any:
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study_id, number)
    )


def _recover(study: Any, storage: Any, results_dir: Path, metric: str) -> list[str]:
    """Trials left RUNNING by a killed `ftbench tune`: close them from their result if the run
    finished, else mark them failed (interrupted) and queue the same parameters again."""
    from optuna.trial import TrialState

    notes = []
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_id = stale.user_attrs.get("run_id")
        result = read_result(results_dir / "runs" / run_id) if run_id else None
        if result and result.status in FINAL_STATUSES:
            _tell(study, storage, stale.number, result, metric)
            notes.append(f"trial {stale.number}: finished before the interruption, recorded")
            continue
        _trial_handle(study, storage, stale.number).set_user_attr("interrupted", True)
        study.tell(stale.number, state=TrialState.FAIL)
        study.enqueue_trial(stale.params, user_attrs={"retry_of": stale.number})
        notes.append(f"trial {stale.number}: interrupted, its parameters are queued again")
    return notes


def _counted(study: Any, tune: TuneConfig) -> tuple[int, int]:
    """(trials that count toward the budget, uncounted failures)."""
    counted_states = {_COUNTED_STATE[c] for c in tune.count}
    counted = failed = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("interrupted"):
            continue
        if t.state.name in counted_states:
            counted += 1
        elif t.state.name == "FAIL":
            failed += 1
    return counted, failed


def expected_best(values: list[float], maximize: bool = True) -> list[float]:
    """Expected best validation score of n trials, n = 1..N (Dodge et al. 2019, "Show Your Work").

    E[max of n draws from the N observed scores] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n),
    with v sorted ascending (descending for a metric to minimise).
    """
    ordered = sorted(values, reverse=not maximize)
    total = len(ordered)
    return [
        sum(v * ((i / total) ** n - ((i - 1) / total) ** n) for i, v in enumerate(ordered, start=1))
        for n in range(1, total + 1)
    ]


def tune_plan(
    plan: Plan,
    *,
    results_dir: Path,
    db_path: Path,
    executor: Executor | None = None,
    pruner: PrunerConfig | None = None,
    final_runs: bool = True,
    storage: str | None = None,
) -> TuneReport:
    """Tune every cell of the plan with a search space, then re-run each cell's best values on
    every suite seed (unless final_runs is False). Up to `executor.parallel` trials of a study
    run at once; `storage` is an Optuna storage URL (default: a journal file per cell)."""
    storage_url = storage
    suite = plan.suite
    if suite.tune is None:
        raise ValueError(f"{plan.source}: the suite has no `tune:` block")
    tune = suite.tune
    pruner = pruner or tune.pruner
    executor = schedulable(executor or default_executor(plan))
    store.record_suite(db_path, suite, plan.source)
    report = TuneReport()
    planner = Planner()
    cells = tune_cells(plan, planner)
    for cell in cells:
        stages = planner.plan(cell.base)[:-1]
        if stages:  # the stages a trial starts from run (or are reused) before its study
            run_plan(plan.subset(stages), results_dir=results_dir, db_path=db_path,
                     executor=executor)  # fmt: skip
        max_steps = cell.base.training.max_steps
        eval_every = tune.eval_every or max(1, max_steps // 4)
        max_reports = max(1, max_steps // eval_every)
        if storage_url:  # an Optuna RDB every node reaches
            where = storage_url
        else:  # a journal file per cell (on a shared path when trials run on other nodes)
            path = study_file(results_dir, suite.name, cell.base.cell)
            path.parent.mkdir(parents=True, exist_ok=True)
            # an absolute path for runs on other nodes (whose working folder differs); the
            # path as given otherwise (it is part of the trials' run_ids)
            where = str(path.resolve() if getattr(executor, "remote", False) else path)
        storage = open_storage(where)
        study = _open_study(suite, cell, storage, pruner, max_reports, executor.parallel > 1)
        report.notes += [
            f"{cell.base.cell}: {n}" for n in _recover(study, storage, results_dir, cell.metric)
        ]
        bar = tqdm(total=tune.trials, desc=f"tune {cell.base.cell}", unit="trial", position=0)
        in_flight: dict[Any, tuple[int, PlannedRun]] = {}
        while True:
            # Ask while the budget allows: finished counted trials plus the ones still running
            # never exceed `trials` (a running trial may still fail, and then one more is asked).
            while len(in_flight) < executor.parallel:
                counted, failed = _counted(study, tune)
                bar.n = counted
                bar.refresh()
                if counted + len(in_flight) >= tune.trials:
                    break
                if failed >= tune.max_failed:
                    break  # the ones in flight finish
                trial = study.ask()
                values = suggest_all(trial, cell.space)
                ref = TrialRef(
                    study_name=study.study_name, storage=where, number=trial.number,
                    metric=cell.metric, direction=cell.direction, eval_every=eval_every,
                    max_reports=max_reports, pruner=pruner,
                )  # fmt: skip
                # Sampled values that do not fit the budget are not run (see _tell).
                run = planner.plan(with_values(cell.base, values, trial=ref))[-1]
                trial.set_user_attr("run_id", run.spec.run_id)
                done = prepare(run, results_dir, db_path, force=True)
                if done is not None:
                    _close(study, storage, trial.number, run, done[0], cell.metric)
                    continue
                run_dir = results_dir / "runs" / run.spec.run_id
                in_flight[executor.submit(run.spec, run_dir)] = (trial.number, run)
            if not in_flight:
                break
            handle, outcome = executor.wait_any(list(in_flight))
            number, run = in_flight.pop(handle)
            result = record(run, outcome, results_dir, db_path)
            _close(study, storage, number, run, result, cell.metric)
            store.ingest_trials(db_path, suite.name, cell.base, study)
        counted, failed = _counted(study, tune)
        if counted < tune.trials and failed >= tune.max_failed:
            report.notes.append(
                f"{cell.base.cell}: stopped after {failed} failed trials (tune.max_failed)"
            )
        bar.close()
        completed = [
            t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
        ]
        curve = expected_best(completed, cell.direction == "maximize")
        store.ingest_expected_best(db_path, suite.name, cell.base, cell.metric, curve)
        report.studies[cell.base.cell] = study
    if final_runs:
        report.final = _run_tuned(plan, cells, report, results_dir, db_path, executor, planner)
    return report


def _run_tuned(
    plan: Plan,
    cells: list[Cell],
    report: TuneReport,
    results_dir: Path,
    db_path: Path,
    executor: Executor,
    planner: Planner,
) -> SuiteReport:
    """Re-run each cell's best parameters on every suite seed, scored once on the test split."""
    suite = plan.suite
    finals: list[RunSpec] = []
    for cell in cells:
        study = report.studies[cell.base.cell]
        if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
            report.notes.append(f"{cell.base.cell}: no completed trial, nothing to re-run")
            continue
        best = study.best_trial
        tuned = TunedRef(
            study_name=study.study_name, trials=suite.tune.trials, best_trial=best.number,
            best_value=best.value, metric=cell.metric,
        )  # fmt: skip
        for seed in suite.seeds:
            finals.append(with_values(cell.base, best.params, seed=seed, tuned=tuned))
    final_plan = plan_specs(plan, finals, planner)
    report.notes += [
        f"{r.spec.label}: {'; '.join(r.adjustments)} ({r.fitted.verdict.reason})"
        for r in final_plan.runs
        if r.adjustments
    ]
    return run_plan(final_plan, results_dir=results_dir, db_path=db_path, executor=executor)


def suggest_all(trial: Any, space: dict[str, SearchDim]) -> dict[str, Any]:
    return {name: dim.suggest(trial, name) for name, dim in sorted(space.items())}
