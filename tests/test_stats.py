"""The leaderboard's statistics (harness/store/stats.py) and their use by the store and `ftbench
show`: coverage of the intervals, paired tests against the leader, Holm, Friedman / Nemenyi."""

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


def test_the_t_interval_has_the_textbook_values():
    # 1, 2, 3: mean 2, s = 1, se = 1/sqrt(3); t(0.975, 2 df) = 4.302653 (table: 4.303)
    assert stats.t_interval([1.0, 2.0, 3.0]) == (
        pytest.approx(2 - 2.4841377, abs=1e-6), pytest.approx(2 + 2.4841377, abs=1e-6)
    )  # fmt: skip
    # 90 %: t(0.95, 2 df) = 2.919986
    low, high = stats.t_interval([1.0, 2.0, 3.0], confidence=0.90)
    assert high - 2 == pytest.approx(2.919986 / math.sqrt(3), abs=1e-6)
    assert stats.t_interval([0.5]) is None and stats.t_interval([0.5, math.nan]) is None
    # the leaderboard's vectorised path: the same numbers per cell, NaN under 2 seeds
    low, high = stats.t_intervals([3, 5, 1], [2.0, 0.7, 0.4], [1.0, math.sqrt(0.025 / 4), 0.0])
    assert low[:2] == pytest.approx([2 - 2.4841377, 0.6018378], abs=1e-6)
    assert high[:2] == pytest.approx([2 + 2.4841377, 0.7981622], abs=1e-6)
    assert math.isnan(low[2]) and math.isnan(high[2])


def test_the_bootstrap_interval_of_a_fixed_case():
    # 0, 0, 0, 1 resampled: the mean of 4 draws is k/4 with k ~ Binomial(4, 1/4); its 2.5 % and
    # 97.5 % quantiles are 0 and 0.75 (P(k = 4) = 0.4 % < 2.5 % <= P(k >= 3) = 5.1 %)
    assert stats.bootstrap_ci([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.75)
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


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
    # By hand: s = sqrt(0.025 / 4), se = s / sqrt(5) = 0.0353553; t(0.975, 4 df) = 2.776445
    # (any t table: 2.776), so the half-width is 0.0981622.
    assert (a["ci_low"], a["ci_high"]) == (
        pytest.approx(0.6018378, abs=1e-7), pytest.approx(0.7981622, abs=1e-7)
    )  # fmt: skip
    assert a["ci_method"] == stats.SEED_METHOD
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


# --- coverage: simulated seeds and examples from known distributions, fixed RNG ---------------


def _coverage(interval, samples: np.ndarray, truth: float) -> float:
    hits = 0
    for sample in samples:
        low, high = interval(sample)
        hits += low <= truth <= high
    return hits / len(samples)


@pytest.mark.parametrize("n", [3, 5])
def test_the_seed_interval_holds_its_coverage_at_small_n(n):
    rng = np.random.default_rng(2026)
    samples = rng.normal(0.7, 0.03, size=(2000, n))  # seed scores of one cell
    assert _coverage(stats.t_interval, samples, 0.7) >= 0.93
    # The percentile bootstrap the leaderboard used before covers far less at n = 3: the test
    # tells the two apart (it fails when the seed interval is switched back to the bootstrap).
    if n == 3:
        boot = _coverage(lambda v: stats.bootstrap_ci(v, n_resamples=500), samples[:500], 0.7)
        assert boot < 0.85


@pytest.mark.parametrize("p", [0.1, 0.5, 0.85])
def test_the_wilson_interval_holds_its_coverage_at_200_examples(p):
    rng = np.random.default_rng(7)
    correct = rng.binomial(200, p, size=2000)
    covered = np.mean([lo <= p <= hi for lo, hi in (stats.wilson(k, 200) for k in correct)])
    assert covered >= 0.93
    per_run = stats.example_interval([1.0] * 140 + [0.0] * 60)
    assert per_run.method == "Wilson" and per_run.n == 200
    assert (per_run.low, per_run.high) == stats.wilson(140, 200)
    assert per_run.se == pytest.approx(math.sqrt(0.7 * 0.3 / 200))


# --- paired tests against the leader --------------------------------------------------------


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def test_mcnemar_finds_a_per_example_difference_the_overlap_misses():
    rng = np.random.default_rng(11)
    leader = (rng.random(1000) < 0.74).astype(float)
    row = leader.copy()
    right, wrong = np.flatnonzero(leader == 1), np.flatnonzero(leader == 0)
    row[rng.choice(right, 60, replace=False)] = 0.0  # the row loses 60 the leader gets
    row[rng.choice(wrong, 20, replace=False)] = 1.0  # and wins 20 the leader misses
    assert _overlap(stats.wilson(row.sum(), 1000), stats.wilson(leader.sum(), 1000))
    test = stats.paired_examples(row, leader)
    assert test.test.startswith("McNemar") and test.diff == pytest.approx(-0.04)
    assert test.p < 1e-4 and test.high < 0
    assert stats.verdict(test.diff, test.p, higher_is_better=True) == "behind"
    # No difference: 40 flips each way.
    same = leader.copy()
    same[rng.choice(right, 40, replace=False)] = 0.0
    same[rng.choice(wrong, 40, replace=False)] = 1.0
    null = stats.paired_examples(same, leader)
    assert null.diff == 0 and null.p == 1.0 and null.low < 0 < null.high
    assert stats.verdict(null.diff, null.p, True) == "tied"


def test_paired_bootstrap_for_continuous_per_example_scores():
    rng = np.random.default_rng(5)
    base = rng.normal(0.5, 0.2, size=400)  # e.g. per-query NDCG: hard and easy queries
    better = base + 0.02 + rng.normal(0, 0.02, size=400)
    assert _overlap(stats.t_interval(better), stats.t_interval(base))
    test = stats.paired_examples(better, base)
    assert test.test.startswith("paired bootstrap") and test.p < 0.001 and test.low > 0
    null = stats.paired_examples(base + rng.normal(0, 0.02, size=400), base)
    assert null.p > 0.05


def test_paired_t_over_seeds_finds_a_difference_hidden_by_the_seed_spread():
    seed_effect = np.array([-0.03, 0.0, 0.035])  # data order etc.: shared by both methods
    leader = 0.80 + seed_effect + np.array([0.001, -0.002, 0.001])
    row = 0.79 + seed_effect + np.array([-0.001, 0.002, 0.0])
    assert _overlap(stats.t_interval(row), stats.t_interval(leader))  # unpaired: no verdict
    test = stats.compare(dict(enumerate(row)), dict(enumerate(leader)))
    assert test.test == "paired t, 3 seeds" and test.p < 0.05 and test.high < 0
    null_row = 0.80 + seed_effect + np.array([0.002, -0.001, -0.001])
    null = stats.compare(dict(enumerate(null_row)), dict(enumerate(leader)))
    assert null.p > 0.3


def test_compare_pairs_what_pairs():
    examples = {0: {"a": 1.0, "b": 0.0, "c": 1.0}}
    # one shared seed: per-example test on the shared ids; no examples: nothing to pair
    one = stats.compare({0: 0.6}, {0: 0.7}, examples, {0: {"a": 1.0, "b": 1.0, "c": 1.0}})
    assert one.test == "McNemar exact, 3 examples"
    assert stats.compare({0: 0.6}, {0: 0.7}) is None
    assert stats.compare({0: 0.6, 1: 0.6}, {2: 0.7, 3: 0.7}) is None  # no seed in common


def test_holm_and_verdicts():
    assert stats.holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx(
        [0.03, 0.06, 0.06, math.nan], nan_ok=True
    )
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert stats.verdict(0.02, 0.01, higher_is_better=True) == "ahead"
    assert stats.verdict(0.02, 0.01, higher_is_better=False) == "behind"  # a loss 0.02 higher
    assert stats.verdict(-0.02, 0.2, True) == "tied"
    assert stats.verdict(-0.02, math.nan, True) == "no test"


def test_friedman_average_ranks_and_the_nemenyi_critical_difference():
    rng = np.random.default_rng(3)
    # 10 dataset x model cells, 4 entries: a is always best, b and c trade places, d is last
    scores = np.column_stack([
        np.full(10, 0.9), 0.8 + rng.normal(0, 0.01, 10), 0.8 + rng.normal(0, 0.01, 10),
        np.full(10, 0.5),
    ])  # fmt: skip
    test = stats.friedman(scores, ["a", "b", "c", "d"], higher_is_better=True)
    assert test.avg_rank[0] == 1.0 and test.avg_rank[3] == 4.0
    assert sum(test.avg_rank) == pytest.approx(10.0)
    assert test.p < 0.001
    # Demšar 2006, table 5: q_0.05 = 2.569 for k = 4
    assert test.cd == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 10)), abs=1e-3)
    lower = stats.friedman(1 - scores, ["a", "b", "c", "d"], higher_is_better=False)
    assert lower.avg_rank == test.avg_rank
    assert stats.friedman(scores[:, :2], ["a", "b"], True) is None  # k < 3: use the paired test


# --- the store: per-example scores in, per-run intervals and paired verdicts out ---------------


def _with_examples(run_id, method, seed, correct):
    res = _result(run_id, method, seed, float(np.mean(correct)))
    ids = [f"{i:016x}" for i in range(len(correct))]
    res["train_info"]["examples"] = {"test": {"ids": ids, "scores": {"accuracy": correct}}}
    return res


def test_the_leaderboard_pairs_per_example_scores_and_show_prints_them(tmp_path):
    rng = np.random.default_rng(1)
    db = tmp_path / "ex.duckdb"
    leader = (rng.random(1000) < 0.74).astype(float)
    row = leader.copy()
    row[rng.choice(np.flatnonzero(leader == 1), 60, replace=False)] = 0.0
    row[rng.choice(np.flatnonzero(leader == 0), 20, replace=False)] = 1.0
    store.ingest(db, _with_examples("a0", "a", 0, leader.tolist()))
    store.ingest(db, _with_examples("b0", "b", 0, row.tolist()))
    store.ingest(db, _result("c0", "c", 0, 0.5))  # an older run: no per-example scores

    board = store.leaderboard(db, "s").set_index("method")
    a, b, c = board.loc["a"], board.loc["b"], board.loc["c"]
    assert (a["ex_low"], a["ex_high"]) == stats.wilson(leader.sum(), 1000)
    assert a["ex_method"] == "Wilson" and a["ex_n"] == 1000 and math.isnan(a["ci_low"])
    assert b["vs_leader"] == "behind" and b["test"] == "McNemar exact, 1000 examples"
    assert b["diff"] == pytest.approx(-0.04) and b["p_value"] < 1e-4
    assert c["vs_leader"] == "no test" and c["ex_n"] == 0 and math.isnan(c["ex_low"])
    # Holm over the two tests of this ranking (c has none): b's p is the only one, unchanged
    assert b["p_value"] == b["p_raw"]

    text = format_leaderboard(store.leaderboard(db, "s"), "s")
    assert f"[{a['ex_low']:.4f}, {a['ex_high']:.4f}]" in text
    assert "behind -0.0400" in text and "McNemar" in text
    assert "no per-example scores stored" not in text  # some rows have them

    old = tmp_path / "old.duckdb"
    store.ingest(old, _result("c0", "c", 0, 0.5))
    store.ingest(old, _result("d0", "d", 0, 0.6))
    shown = format_leaderboard(store.leaderboard(old, "s"), "s")
    assert shown.count("no per-example scores stored") == 1


def test_show_ranks_entries_across_datasets_and_models():
    import pandas as pd

    from harness.store.queries import rank_tests

    rows = [
        {"dataset": d, "model": m, "metric": "accuracy", "entry": e, "mean": v - 0.01 * i,
         "valid": True, "higher_is_better": True}
        for i, (d, m) in enumerate([("x", "m1"), ("x", "m2"), ("y", "m1"), ("y", "m2")])
        for e, v in (("lora", 0.9), ("ia3", 0.8), ("zero_shot", 0.5))
    ]  # fmt: skip
    ((metric, test),) = rank_tests(pd.DataFrame(rows))
    assert metric == "accuracy" and test.n_blocks == 4
    assert dict(zip(test.entries, test.avg_rank, strict=True)) == {
        "ia3": 2.0, "lora": 1.0, "zero_shot": 3.0
    }  # fmt: skip


def test_a_version_4_database_without_per_example_rows_still_shows(tmp_path):
    import duckdb

    db = tmp_path / "v4.duckdb"
    store.ingest(db, _result("a0", "a", 0, 0.7))
    store.ingest(db, _result("b0", "b", 0, 0.6))
    with duckdb.connect(str(db)) as con:  # as ftbench before per-example scores wrote it
        con.execute("DROP TABLE examples; UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    board = store.leaderboard(db, "s")  # migrates to the current schema first
    assert list(board["method"]) == ["a", "b"] and (board["ex_n"] == 0).all()
    assert list(board["vs_leader"]) == ["leader", "no test"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM examples").fetchone() == (0,)
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(store.SCHEMA_VERSION),)


def test_export_can_include_the_per_example_scores(tmp_path):
    import pandas as pd

    db = tmp_path / "e.duckdb"
    store.ingest(db, _with_examples("a0", "a", 0, [1.0, 0.0, 1.0]))
    store.ingest(db, _result("c0", "c", 0, 0.5))
    out = tmp_path / "x.csv"
    store.export(db, out, "csv", "s", examples=True)
    rows = pd.read_csv(tmp_path / "x_examples.csv", dtype={"example_id": str})
    assert rows["run_id"].tolist() == ["a0"] * 3 and rows["metric"].unique().tolist() == [
        "accuracy"
    ]
    assert dict(zip(rows["example_id"], rows["score"], strict=True)) == {
        f"{i:016x}": v for i, v in enumerate([1.0, 0.0, 1.0])
    }
    store.export(db, tmp_path / "y.csv", "csv", "s")
    assert not (tmp_path / "y_examples.csv").exists()  # only when asked
