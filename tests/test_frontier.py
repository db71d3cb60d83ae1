"""Reward-KL frontiers: the frontier, matched-KL interpolation and dominance on constructed
numbers; `ftbench show` and the dashboard's Alignment frontier page on a constructed store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from frontier_fixtures import build_store, constructed_runs
from streamlit.testing.v1 import AppTest

from dashboard.synthetic import result
from harness.backends.alignment import frontier as fr
from harness.cli import main as cli
from harness.store import frontier as numbers
from harness.store import ingest

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
NAN = math.nan

# --- on numbers ----------------------------------------------------------------------------------


def test_the_frontier_keeps_the_non_dominated_points():
    kl = [0.0, 1.0, 2.0, 3.0, 1.0, NAN, 0.5]
    score = [0.0, 0.5, 0.4, 0.9, 0.5, 9.9, 0.0]
    # (2, 0.4) is dominated by (1, 0.5); (0.5, 0) by (0, 0); the (1, 0.5) twins both stay; NaN
    # is never on it.
    xs, ys = numbers.frontier_curve(kl, score)
    assert xs.tolist() == [0.0, 1.0, 3.0] and ys.tolist() == [0.0, 0.5, 0.9]


def test_interpolation_along_a_frontier_never_extrapolates():
    xs, ys = np.array([0.0, 1.0, 3.0]), np.array([0.0, 0.5, 0.9])
    got = numbers.interpolate(xs, ys, [0.5, 2.0, 3.0, 0.0, 4.0, -0.1])
    assert got[:4].tolist() == pytest.approx([0.25, 0.7, 0.9, 0.0])
    assert np.isnan(got[4:]).all()
    assert np.isnan(numbers.interpolate(np.array([]), np.array([]), [1.0])).all()


def test_levels_lie_where_every_curve_reaches():
    assert numbers.kl_levels([(0.0, 2.0), (0.0, 3.0), (0.5, 4.0)], 3).tolist() == [1.0, 1.5, 2.0]
    assert numbers.kl_levels([(0.0, 1.0), (2.0, 3.0)], 3).size == 0  # no common range
    assert numbers.kl_levels([], 3).size == 0


def test_matched_kl_scores_and_who_leads_where():
    (f,) = numbers.summarize(constructed_runs(), "judge_score", levels=4)
    assert f.seeds == [0, 1, 2] and f.notes == []
    at = f.matched.set_index(["kl", "family"])["mean"]
    # Per seed the curves run 0..2 (a@x=3 is off a's frontier): levels 0.5, 1, 1.5, 2. The mean
    # seed offset is 0.01 for a and 0.02 for b (only where the curve left the shared anchor).
    expected = {(0.5, "a"): 0.505, (0.5, "b"): 0.26, (1.0, "a"): 1.01, (1.0, "b"): 0.52,
                (1.5, "a"): 1.26, (1.5, "b"): 1.52, (2.0, "a"): 1.51, (2.0, "b"): 2.52}  # fmt: skip
    assert {k: round(v, 6) for k, v in at.items()} == pytest.approx(expected)
    # Three seeds: a bootstrap interval around each mean.
    assert (f.matched["ci_low"] <= f.matched["mean"]).all()
    assert (f.matched["mean"] <= f.matched["ci_high"]).all()
    lead = f.dominance.set_index("kl")
    assert lead["leader"].tolist() == ["a", "a", "b", "b"]
    assert lead.loc[1.0, "difference"] == pytest.approx(1.01 - 0.52)
    assert lead["seeds_won"].tolist() == [3, 3, 3, 3] and set(lead["verdict"]) == {"ahead"}
    assert numbers.leaders(f.dominance) == [("a", 0.5, 1.0), ("b", 1.5, 2.0)]
    # The mean points: a@x=3 is dominated within its family; the anchor is the start policy.
    on = f.settings.set_index("setting")["on_frontier"]
    assert on.to_dict() == {"-": True, "x=1": True, "x=2": True, "x=3": False,
                            "y=1": True, "y=2": True}  # fmt: skip


def test_two_seeds_give_no_interval_and_say_so():
    (f,) = numbers.summarize(constructed_runs(seeds=(0, 1)), "win_rate", levels=2)
    assert f.matched["ci_low"].isna().all()
    assert set(f.dominance["verdict"]) == {"no CI"}
    assert any("no bootstrap interval" in n for n in f.notes)


def test_a_family_without_a_range_in_every_seed_is_not_compared():
    runs = constructed_runs()
    runs = runs[~((runs["family"] == "b") & (runs["seed"] == 2))]  # b has no run of seed 2
    runs = runs[~((runs["method_key"] == "start") & (runs["seed"] == 2))]
    (f,) = numbers.summarize(runs, "judge_score")
    assert set(f.matched["family"]) == {"a"}  # a's seed 2 still spans x=1..x=2
    assert any(n.startswith("b: not compared") for n in f.notes)


def test_runs_scored_by_different_judges_are_flagged():
    runs = constructed_runs()
    runs.loc[runs["method_key"] == "b@y=1", "judge_run"] = "another-judge"
    (f,) = numbers.summarize(runs, "judge_score")
    assert any("different judges" in n for n in f.notes)


# --- from a store --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_db(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("frontier") / "align.duckdb")


def test_policy_runs_reads_families_settings_and_judges(store_db):
    runs = fr.policy_runs(store_db, "align")
    assert len(runs) == 6 * 3 + 1  # stages are not policies
    assert set(runs["family"]) == {"start", "a", "b"}
    one = runs.set_index("run_id").loc[runs["run_id"][runs["method_key"] == "a@x=2"].iloc[0]]
    assert (one["setting"], one["kl"], one["judge_run"]) == ("x=2", 2.0, f"judge-{one['seed']}")
    assert fr.suites_with_policies(store_db) == ["align"]


def test_show_prints_the_frontier(store_db, capsys):
    assert cli(["--db", str(store_db), "show", "align"]) == 0
    out = capsys.readouterr().out
    assert "Alignment frontier: judge_score vs KL(policy ‖ start) · rt · tiny" in out
    assert "Alignment frontier: win_rate vs KL" in out
    assert "judge_score at matched KL" in out
    assert "not ok: b@y=3·s0: failed: RuntimeError: boom" in out
    table = out.split("judge_score at matched KL")[1].split("\n\n")[0]
    assert "0.808 [0.800, 0.816]" in table and "ahead" in table  # a at KL 0.8, its interval
    assert "leads: a at KL 0.400-1.200; b at KL 1.600-2.000" in out
    # the independent judge's frontier too, and where it ranks the settings otherwise
    assert "Alignment frontier: indep_judge_score vs KL(policy ‖ start) · rt · tiny" in out
    assert "Alignment frontier: indep_win_rate vs KL" in out
    assert "order 13 of 15 pairs of settings alike" in out
    flips = out.split("they disagree on")[1]
    assert "b@y=2 a@x=2         1.01              -0.19" in flips and "b@y=1 start" in flips


def test_judge_pairs_name_where_the_judges_disagree():
    pairs = numbers.judge_pairs(constructed_runs())
    assert len(pairs) == 15  # 6 settings
    flips = pairs[~pairs["agree"]].set_index(["higher", "lower"])
    assert sorted(flips.index) == [("b@y=1", "start"), ("b@y=2", "a@x=2")]
    # differences higher - lower, under each judge: b@y=2 - a@x=2 is 1.01 for the trained judge
    assert flips.loc[("b@y=2", "a@x=2"), "judge_score"] == pytest.approx(1.01)
    assert flips.loc[("b@y=2", "a@x=2"), "indep_judge_score"] == pytest.approx(-0.19)
    # the independent frontier is its own: b no longer leads anywhere at matched KL
    (f,) = numbers.summarize(constructed_runs(), "indep_judge_score", levels=4)
    assert set(f.dominance["leader"]) == {"a"}


def open_frontier(db: Path, monkeypatch, **query: str) -> AppTest:
    monkeypatch.setenv("FTBENCH_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("views/frontier.py")
    at.query_params.clear()
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Alignment frontier"]
    return at


def test_frontier_page_draws_runs_frontiers_and_bands(store_db, monkeypatch):
    at = open_frontier(store_db, monkeypatch)
    assert [s.value for s in at.sidebar.selectbox] == [
        "align", "rt", "tiny", "trained", "judge_score"
    ]  # fmt: skip
    assert len(at.get("vega_lite_chart")) == 1
    points, at_kl, lead, flips, bad = (d.value for d in at.dataframe)
    assert len(flips) == 2  # the pairs of settings the two judges order differently
    assert set(points["family"]) == {"start", "a", "b"} and len(points) == 6
    assert at_kl["ci_low"].notna().all()  # three seeds: the band has an interval everywhere
    assert set(lead["leader"]) == {"a", "b"}
    assert bad["status"].tolist() == ["failed"]
    at.sidebar.selectbox(key="fr_metric_trained").set_value("win_rate").run()
    assert not at.exception and at.dataframe[0].value["win_rate"].notna().all()
    # the independent judge: its own scores on the plot, and where the judges disagree
    at.sidebar.selectbox(key="fr_judge").set_value("independent").run()
    assert not at.exception
    assert [s.value for s in at.sidebar.selectbox][-2:] == ["independent", "indep_judge_score"]
    assert "Where the judges disagree" in [h.value for h in at.subheader]
    flips = next(d.value for d in at.dataframe if "higher" in d.value.columns)
    assert sorted(zip(flips["higher"], flips["lower"], strict=True)) == [
        ("b@y=1", "start"), ("b@y=2", "a@x=2")
    ]  # fmt: skip


def test_frontier_page_without_alignment_runs(tmp_path, monkeypatch):
    db = tmp_path / "sft.duckdb"
    ingest(db, result(suite="sft", method="lora", metrics={"accuracy": 0.5}), result_path=None)
    at = open_frontier(db, monkeypatch)
    assert "No alignment policy runs yet" in at.info[0].value
