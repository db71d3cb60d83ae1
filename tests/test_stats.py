"""Seed statistics (harness/store/stats.py) and their use by the store and `ftbench show`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import store
from harness.show.leaderboard import format_leaderboard
from harness.store import stats


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(123)
    population = rng.normal(0.7, 0.05, size=200)
    widths = []
    for n in (5, 20, 80):
        values = population[:n]
        low, high = stats.bootstrap_ci(values)
        assert low < values.mean() < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert stats.bootstrap_ci(population[:5]) == stats.bootstrap_ci(population[:5])  # fixed seed
    assert stats.bootstrap_ci([0.5, 0.6]) is None  # too few seeds for an interval


def test_trimmed_mean_drops_the_best_and_the_worst():
    assert stats.trimmed_mean([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(3.0)
    assert stats.trimmed_mean([5.0, -50.0, 6.0, 7.0, 8.0, 9.0]) == pytest.approx(6.5)
    assert stats.trimmed_mean([1.0, 2.0, 3.0, 4.0]) is None  # needs 5 seeds


def test_summarize_marks_a_cell_with_two_diverged_seeds_invalid():
    ok = stats.summarize([0.6, 0.7, 0.8], diverged=1)
    assert ok["valid"] and ok["n"] == 3
    assert ok["mean"] == pytest.approx(0.7) and ok["std"] == pytest.approx(0.1)
    assert math.isnan(ok["trimmed_mean"])
    bad = stats.summarize([0.6, 0.7, 0.8], diverged=2)
    assert not bad["valid"] and bad["diverged"] == 2


def _result(run_id, method, seed, value, status="ok"):
    spec = {
        "suite": "s", "suite_version": 1, "method_key": method, "method": method, "model_key": "m",
        "dataset_key": "d", "dataset": {"task": "sentiment", "metric": "accuracy"}, "seed": seed,
    }  # fmt: skip
    info = {"status": status, "reason": None if status == "ok" else "x"}
    if value is not None:
        info["metrics"] = {"test": {"accuracy": value, "eval_loss": 1.0 - value}}
    return {"run_id": run_id, "run_info": {"spec": spec}, "train_info": info, "meta_info": {}}


def test_the_leaderboard_uses_them_for_any_metric(tmp_path):
    db = tmp_path / "t.duckdb"
    values = [0.60, 0.70, 0.80, 0.75, 0.65]
    for seed, value in enumerate(values):
        store.ingest(db, _result(f"a{seed}", "a", seed, value))
    store.ingest(db, _result("b0", "b", 0, 0.95))
    for seed in (1, 2):
        store.ingest(db, _result(f"b{seed}", "b", seed, None, status="diverged"))

    board = store.leaderboard(db, "s")  # the headline metric: accuracy
    cells = board.set_index("method")
    a = cells.loc["a"]
    assert a["metric"] == "accuracy" and a["n"] == 5 and a["valid"]
    assert a["mean"] == pytest.approx(np.mean(values))
    assert a["std"] == pytest.approx(np.std(values, ddof=1))
    assert a["trimmed_mean"] == pytest.approx(0.70)  # without 0.60 and 0.80
    assert a["ci_low"] < a["mean"] < a["ci_high"]
    assert (a["ci_low"], a["ci_high"]) == stats.bootstrap_ci(values)
    b = cells.loc["b"]
    assert b["diverged"] == 2 and not b["valid"] and b["runs"] == 3
    assert (a["vs_leader"], b["vs_leader"]) == ("leader", "invalid")
    loss = store.leaderboard(db, "s", metric="eval_loss").set_index("method")
    assert not loss.loc["a", "higher_is_better"]
    assert loss.loc["a", "mean"] == pytest.approx(1.0 - np.mean(values))

    # b has the better mean but two diverged seeds: it is invalid and ranked after a.
    assert list(board["method"]) == ["a", "b"]
    assert list(board["valid"]) == [True, False]
    text = format_leaderboard(board, "s")
    assert "[0.6" in text and "b ⚑ ✗" in text and "invalid: 2 seeds diverged" in text


def test_ties_against_the_leader_in_both_directions():
    means, lows, highs = (
        [0.80, 0.79, 0.50, float("nan")],
        [0.78, 0.77, 0.49, float("nan")],
        [0.82, 0.81, 0.51, float("nan")],
    )
    assert stats.mark_ties(means, lows, highs, True) == ["leader", "tied", "", "no data"]
    # Lower is better: the 0.50 row leads and nothing overlaps it.
    assert stats.mark_ties(means, lows, highs, False) == ["", "", "leader", "no data"]
    assert stats.mark_ties([float("nan")], [float("nan")], [float("nan")], True) == ["no data"]
    nan = float("nan")
    assert stats.mark_ties([0.8, 0.7], [0.78, nan], [0.82, nan], True) == ["leader", "no CI"]
    # An invalid cell never leads, however good its surviving seeds look.
    valid = [False, True, True, True]
    assert stats.mark_ties(means, lows, highs, True, valid) == ["invalid", "leader", "", "no data"]
