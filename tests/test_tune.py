"""Optuna tuning: search spaces, a real study on the tiny model, resume, pruning, failures."""

from __future__ import annotations

import copy

import duckdb
import optuna
import pytest
from helpers import load_specs, suite_dict

from harness.plan.plan import make_plan
from harness.runs.trial import journal_storage
from harness.suite.search_space import SearchDim
from harness.suite.suite_file import SuiteError, with_values
from harness.tuning.study import expected_best, study_file, suggest_all, tune_plan

SPACE = {
    "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "r": {"type": "int", "low": 2, "high": 8, "step": 2},
    "dropout": {"type": "categorical", "choices": [0.0, 0.1]},
}


def tune_data(trials=3, pruner=None, method="lora", **tune):
    space = copy.deepcopy(SPACE if method == "lora" else {"learning_rate": SPACE["learning_rate"]})
    data = suite_dict(seeds=[0, 1], methods={"m": {"method": method, "search": space}})
    data["grid"]["methods"] = ["m"]
    data["tune"] = {
        "trials": trials,
        "sampler": {"type": "random", "seed": 0},
        "pruner": pruner or {"type": "none"},
        **tune,
    }
    return data


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _tune(path, results, **kwargs):
    return tune_plan(
        make_plan(path), results_dir=results, db_path=results / "ftbench.duckdb", **kwargs
    )


def test_fixed_trial_maps_the_space_onto_the_run(write_suite):
    _, (spec, _) = load_specs(write_suite(tune_data()))
    space = {k: SearchDim.model_validate(v) for k, v in SPACE.items()}
    values = suggest_all(
        optuna.trial.FixedTrial({"learning_rate": 3.0e-3, "r": 6, "dropout": 0.1}), space
    )
    tuned = with_values(spec, values)
    assert tuned.training.learning_rate == 3.0e-3
    assert tuned.params["r"] == 6 and tuned.params["dropout"] == 0.1
    assert tuned.params["alpha"] == spec.params["alpha"]  # untouched params keep their value
    assert tuned.run_id != spec.run_id


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (
            lambda d: d["methods"]["m"]["search"].update(rank={"type": "int", "low": 1, "high": 4}),
            "methods.m.search.rank",
        ),
        (lambda d: d["tune"].update(split="test"), "tune.split"),
        (lambda d: d["methods"]["m"].update(search={}), "no method in the grid declares"),
        (
            lambda d: d["methods"]["m"]["search"].update(r={"type": "int", "low": 8, "high": 2}),
            "low <= high",
        ),
        (lambda d: d["methods"]["m"]["search"].update(r={"type": "categorical"}), "choices"),
    ],
    ids=["unknown key", "test split", "no space", "low>high", "no choices"],
)
def test_bad_tune_blocks(mutate, expected, write_suite):
    data = tune_data()
    mutate(data)
    with pytest.raises(SuiteError, match=expected):
        load_specs(write_suite(data))


def test_expected_best_matches_the_formula():
    assert expected_best([1.0, 2.0, 3.0]) == pytest.approx([2.0, (1 + 2 * 3 + 3 * 5) / 9, 72 / 27])
    assert expected_best([1.0, 2.0, 3.0], maximize=False)[0] == pytest.approx(2.0)
    # By symmetry, E[min of 3 draws] from {1, 2, 3} is 4 - E[max of 3 draws].
    assert expected_best([1.0, 2.0, 3.0], maximize=False)[-1] == pytest.approx(4 - 72 / 27)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    import yaml

    tmp = tmp_path_factory.mktemp("tune")
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(tune_data(trials=3)))
    report = _tune(path, tmp / "results")
    return tmp, path, report


def test_a_real_study_gets_exactly_its_trials(tuned):
    tmp, _, report = tuned
    (study,) = report.studies.values()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    db = tmp / "results" / "ftbench.duckdb"
    rows = _rows(
        db,
        "SELECT number, state, value, params, run_id, peak_mem_bytes FROM trials ORDER BY number",
    )
    assert [r[0] for r in rows] == [0, 1, 2]
    assert all(r[2] is not None and r[4] and r[5] > 0 for r in rows)
    # Trials are scored on validation only; they never touch the test split.
    splits = _rows(
        db,
        "SELECT DISTINCT m.split FROM metrics m JOIN runs r USING (run_id) WHERE r.origin = 'trial'",
    )
    assert splits == [("validation",)]
    curve = [v for (v,) in _rows(db, "SELECT expected_best FROM expected_best ORDER BY n_trials")]
    assert len(curve) == 3 and curve == sorted(curve)


def test_best_params_are_rerun_on_every_seed_and_ranked_as_tuned(tuned):
    tmp, _, report = tuned
    (study,) = report.studies.values()
    finals = report.final.executed
    assert sorted(r.spec["seed"] for r in finals) == [0, 1]
    for result in finals:
        spec = result.spec
        assert (
            spec["tuned"]["best_trial"] == study.best_trial.number and spec["tuned"]["trials"] == 3
        )
        assert spec["training"]["learning_rate"] == pytest.approx(
            study.best_params["learning_rate"]
        )
        assert "test" in result.train_info.metrics
    from harness.store import leaderboard

    board = leaderboard(tmp / "results" / "ftbench.duckdb", "tiny")
    assert (
        list(board["origin"]) == ["tuned"]
        and board.iloc[0]["tune_trials"] == 3
        and board.iloc[0]["n"] == 2
    )


def test_resume_continues_without_losing_or_duplicating_trials(tuned):
    import yaml

    tmp, path, _ = tuned
    results = tmp / "results"
    journal = study_file(results, "tiny", "m·tiny·rt")
    study = optuna.load_study(study_name="tiny:m·tiny·rt", storage=journal_storage(str(journal)))
    stale = study.ask()  # a trial left RUNNING, as if `ftbench tune` had been killed mid-run
    stale_params = suggest_all(stale, {k: SearchDim.model_validate(v) for k, v in SPACE.items()})
    data = yaml.safe_load(path.read_text())
    data["tune"]["trials"] = 4  # ask for one more counted trial
    path.write_text(yaml.safe_dump(data))
    report = _tune(path, results, final_runs=False)
    (study,) = report.studies.values()
    states = [(t.number, t.state.name, t.user_attrs.get("interrupted")) for t in study.trials]
    assert states[:3] == [(0, "COMPLETE", None), (1, "COMPLETE", None), (2, "COMPLETE", None)]
    assert states[3] == (3, "FAIL", True)
    assert states[4][1] == "COMPLETE" and len(states) == 5
    assert study.trials[4].params == stale_params  # the interrupted trial's parameters ran again
    assert any("interrupted" in n for n in report.notes)
    numbers = _rows(results / "ftbench.duckdb", "SELECT number FROM trials ORDER BY number")
    assert [n for (n,) in numbers] == [0, 1, 2, 3, 4]


def test_pruned_trials_stop_early_and_are_counted(tmp_path, write_suite):
    data = tune_data(trials=2, pruner={"type": "threshold", "lower": 2.0}, eval_every=1)
    data["training"]["max_steps"] = 4
    report = _tune(write_suite(data), tmp_path / "r", final_runs=False)
    (study,) = report.studies.values()
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [1] for t in study.trials)
    statuses = _rows(tmp_path / "r" / "ftbench.duckdb", "SELECT status, reason FROM runs")
    assert all(s == "pruned" and "pruned at step 1" in r for s, r in statuses)
    curves = _rows(
        tmp_path / "r" / "ftbench.duckdb", "SELECT max(step) FROM curves WHERE name = 'loss'"
    )
    assert curves == [(1,)]  # stopped after 1 of 4 steps


def test_the_median_pruner_prunes_and_a_lower_is_better_metric_picks_the_lowest(
    tmp_path, write_suite
):
    """A real study with the median pruner on eval_loss (lower is better): a trial whose loss is
    above the median of the earlier trials' at the same step stops there, and the best trial is
    the one with the lowest loss."""
    data = tune_data(
        trials=3, pruner={"type": "median", "n_startup_trials": 1}, eval_every=1,
        metric="eval_loss",
    )  # fmt: skip
    # LoRA's B starts at 0: at 1e-6 the loss barely moves, at 3e-2 it falls from the first step
    lrs = {"type": "categorical", "choices": [1.0e-6, 3.0e-2]}
    data["methods"]["m"]["search"] = {"learning_rate": lrs}
    data["training"]["max_steps"] = 3
    report = _tune(write_suite(data), tmp_path / "r", final_runs=False)
    (study,) = report.studies.values()
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = [(t.state.name, t.params["learning_rate"], t.value) for t in study.trials]
    assert [state for state, *_ in trials].count("PRUNED") >= 1, trials
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for trial in pruned:  # stopped at a step where it was worse than the earlier trials
        step, value = max(trial.intermediate_values.items())
        earlier = [t.intermediate_values[step] for t in study.trials[: trial.number]
                   if step in t.intermediate_values]  # fmt: skip
        assert earlier and value > sorted(earlier)[(len(earlier) - 1) // 2], trials
    assert study.best_trial.value == min(t.value for t in complete), trials
    curve = _rows(
        tmp_path / "r" / "ftbench.duckdb",
        "SELECT expected_best FROM expected_best ORDER BY n_trials",
    )
    assert curve == sorted(curve, reverse=True)  # lower is better: the expected best falls


@pytest.mark.parametrize("kind", ["median", "hyperband"])
def test_the_configured_pruners_prune_what_is_behind(kind):
    """ftbench's pruner settings as Optuna builds them, on a study whose trials report known
    values: each later trial is worse at every step, so each pruner stops some of them early."""
    from harness.suite.search_space import PrunerConfig

    pruner = PrunerConfig(type=kind, n_startup_trials=1, min_resource=1, reduction_factor=2)
    built = pruner.build(max_reports=4)
    assert type(built).__name__ == {"median": "MedianPruner", "hyperband": "HyperbandPruner"}[kind]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a fixed name: Hyperband assigns trials to brackets by a hash of the study name
    study = optuna.create_study(direction="maximize", pruner=built, study_name="pruning")
    stopped_at = {}

    def objective(trial):
        for step in range(1, 5):
            trial.report(1.0 - 0.1 * trial.number, step)
            if trial.should_prune():
                stopped_at[trial.number] = step
                raise optuna.TrialPruned()
        return 1.0 - 0.1 * trial.number

    study.optimize(objective, n_trials=6)
    states = [t.state.name for t in study.trials]
    assert states[0] == "COMPLETE" and states.count("PRUNED") >= 2, states
    assert all(step < 4 for step in stopped_at.values())  # before the last report
    if kind == "hyperband":  # its resources run from min_resource to max_reports
        assert built._max_resource == 4 and built._min_resource == 1


def test_failing_trials_are_marked_and_the_study_stops_at_max_failed(tmp_path, write_suite):
    data = tune_data(trials=3, method="explode", max_failed=2)
    report = _tune(write_suite(data), tmp_path / "r")
    (study,) = report.studies.values()
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert "injected failure" in study.trials[0].user_attrs["reason"]
    assert any("max_failed" in n for n in report.notes)
    assert any("no completed trial" in n for n in report.notes)


def test_killing_ftbench_tune_mid_study_and_restarting_loses_and_duplicates_nothing(
    tmp_path, write_suite
):
    """A real `ftbench tune` subprocess is killed while a trial runs, then started again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write_suite(tune_data(trials=3))
    results = tmp_path / "r"
    journal = study_file(results, "tiny", "m·tiny·rt")
    command = [
        sys.executable,
        "-m",
        "harness",
        "--results",
        str(results),
        "tune",
        str(path),
        "--no-final",
    ]
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if journal.exists():
                try:
                    study = optuna.load_study(
                        study_name="tiny:m·tiny·rt", storage=journal_storage(str(journal))
                    )
                except KeyError:  # the file is there before the study is written into it
                    time.sleep(0.2)
                    continue
                states = [t.state.name for t in study.trials]
                if states.count("COMPLETE") >= 1 and "RUNNING" in states:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the tune subprocess never reached its second trial")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    report = _tune(path, results, final_runs=False)
    (study,) = report.studies.values()
    counted = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(counted) == 3  # the budget is met exactly
    numbers = [t.number for t in study.trials]
    assert numbers == sorted(set(numbers))  # no trial number twice
    assert any("interrupted" in n or "finished before" in n for n in report.notes)  # recovered
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    # The killed trial either finished before the kill (then it was recorded) or was re-queued.
    for trial in interrupted:
        assert any(
            t.user_attrs.get("retry_of") == trial.number and t.state.name == "COMPLETE"
            for t in study.trials
        )
    rows = _rows(results / "ftbench.duckdb", "SELECT count(*), count(DISTINCT number) FROM trials")
    assert rows[0][0] == rows[0][1] == len(study.trials)


def test_trials_over_the_memory_budget_are_not_run_and_count_as_pruned(tmp_path, write_suite):
    data = tune_data(trials=2)
    data["budget"] = {"profile": "custom", "gpu_mem_gb": 0.0001}  # 100 kB: nothing fits
    report = _tune(write_suite(data), tmp_path / "r", final_runs=False)
    (study,) = report.studies.values()
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["status"] == "over_budget" for t in study.trials)
    rows = _rows(tmp_path / "r" / "ftbench.duckdb", "SELECT status, train_s FROM runs")
    assert rows and all(s == "over_budget" and t is None for s, t in rows)  # never trained


def test_a_search_key_names_its_section_when_both_have_it(write_suite):
    """DPO's `loss_type` is a method parameter and SFT's `loss_type` a training field: a bare
    key is refused, `params.loss_type` reaches the method."""
    from test_alignment import tiny_alignment_suite

    data = tiny_alignment_suite(["dpo"], tune={"trials": 1})
    data["methods"]["dpo"]["search"] = {"loss_type": {"type": "categorical", "choices": ["ipo"]}}
    with pytest.raises(SuiteError, match="both a method parameter and a training field"):
        load_specs(write_suite(data))
    space = {"params.loss_type": {"type": "categorical", "choices": ["ipo"]}}
    data["methods"]["dpo"]["search"] = space
    _, specs = load_specs(write_suite(data))
    dpo = next(s for s in specs if s.method == "dpo")
    tuned = with_values(dpo, {"params.loss_type": "ipo"})
    assert tuned.params["loss_type"] == "ipo" and tuned.training.loss_type is None
