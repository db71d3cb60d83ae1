"""Bulk synthetic runs (harness/store/bulk.py, the load test's --bulk) and the rule that the
store is the only code that runs SQL."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.synthetic import result
from harness import store
from harness.store import bulk

ROOT = Path(__file__).resolve().parent.parent


def test_copy_seeds_copies_the_seed_zero_runs_of_one_suite(tmp_path):
    db = tmp_path / "bulk.duckdb"
    for method in ("a", "b"):
        store.ingest(db, result(suite="load", method=method, metrics={"accuracy": 0.5}))
    store.ingest(db, result(suite="other", method="a", metrics={"accuracy": 0.5}))
    bulk.copy_seeds(db, "load", 4)

    runs = store.run_scores(db, "load")
    assert len(runs) == 8 and sorted(runs["seed"].unique()) == [0, 1, 2, 3]
    assert runs["run_id"].is_unique
    ok = runs[runs["status"] == "ok"]
    assert ok["score"].between(0.49, 0.51).all() and ok["n_issues"].eq(runs["n_issues"][0]).all()
    assert runs.loc[runs["status"] != "ok", "score"].isna().all()  # a failed copy has no metric
    assert len(store.run_scores(db, "other")) == 1  # another suite is left alone
    board = store.leaderboard(db, "load")
    assert board["runs"].sum() == 8


def test_no_sql_outside_the_store():
    """harness/store/ is the only code that runs SQL: the dashboard reads through it."""
    sql = re.compile(r"\.execute\(|\.sql\(|^\s*(import duckdb|from duckdb)", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "dashboard").rglob("*.py"))
        if sql.search(path.read_text())
    ]
    assert offenders == []
