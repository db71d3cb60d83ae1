from __future__ import annotations

import duckdb
import pytest

from harness import store


def _result(
    run_id: str,
    method: str,
    seed: int,
    metrics: dict | None,
    status: str = "ok",
    task: str = "sentiment",
):
    metric = "accuracy" if task == "sentiment" else "perplexity"
    spec = {
        "suite": "s", "suite_version": 1, "method_key": method, "method": method, "model_key": "m",
        "dataset_key": "d", "dataset": {"task": task, "metric": metric}, "seed": seed,
    }  # fmt: skip
    info = {"status": status, "reason": None if status == "ok" else "x"}
    if metrics is not None:
        info["metrics"] = {"test": metrics}
        info["curve"] = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
    return {
        "run_id": run_id,
        "run_info": {"spec": spec},
        "train_info": info,
        "meta_info": {"seed": seed},
    }


def test_leaderboard_mean_std_and_direction(tmp_path):
    db = tmp_path / "t.duckdb"
    for seed, value in enumerate([0.6, 0.7, 0.8]):
        store.ingest(db, _result(f"a{seed}", "a", seed, {"accuracy": value}))
    for seed, value in enumerate([0.9, 0.9]):
        store.ingest(db, _result(f"b{seed}", "b", seed, {"accuracy": value}))
    store.ingest(db, _result("b9", "b", 9, None, status="failed"))
    board = store.leaderboard(db, "s")
    assert list(board["method"]) == ["b", "a"]  # higher accuracy first
    a = board.set_index("method").loc["a"]
    assert a["mean"] == pytest.approx(0.7) and a["std"] == pytest.approx(0.1) and a["n"] == 3
    b = board.set_index("method").loc["b"]
    assert b["n"] == 2 and b["runs"] == 3 and b["not_ok"] == "failed 1"


def test_lower_is_better_metrics_sort_ascending(tmp_path):
    db = tmp_path / "t.duckdb"
    store.ingest(db, _result("x", "x", 0, {"perplexity": 12.0}, task="qa"))
    store.ingest(db, _result("y", "y", 0, {"perplexity": 8.0}, task="qa"))
    assert list(store.leaderboard(db, "s")["method"]) == ["y", "x"]


def test_reingest_replaces_and_connection_is_released(tmp_path):
    db = tmp_path / "t.duckdb"
    store.ingest(db, _result("r", "a", 0, {"accuracy": 0.5}))
    store.ingest(db, _result("r", "a", 0, {"accuracy": 0.6}))
    # The writer closed its connection: another process-style connection can open read-only now.
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert con.execute("SELECT value FROM metrics").fetchall() == [(0.6,)]
        assert con.execute("SELECT count(*) FROM curves").fetchone()[0] == 2


def test_schema_version_mismatch_is_refused(tmp_path):
    db = tmp_path / "t.duckdb"
    store.ingest(db, _result("r", "a", 0, {"accuracy": 0.5}))
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(store.SchemaMismatchError, match="999"):
        store.ingest(db, _result("q", "a", 1, {"accuracy": 0.5}))


def test_a_version_1_database_is_migrated_in_place(tmp_path):
    db = tmp_path / "old.duckdb"
    store.ingest(db, _result("r", "a", 0, {"accuracy": 0.5}))
    with duckdb.connect(str(db)) as con:  # make it look like a schema-1 file
        con.execute("ALTER TABLE runs DROP COLUMN origin; ALTER TABLE runs DROP COLUMN tune_trials")
        con.execute("DROP TABLE trials; DROP TABLE expected_best")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.ingest(db, _result("q", "a", 1, {"accuracy": 0.7}))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[
            0
        ] == str(store.SCHEMA_VERSION)
        assert con.execute("SELECT run_id, origin FROM runs ORDER BY run_id").fetchall() == [
            ("q", "run"),
            ("r", "run"),
        ]


def test_a_result_json_from_before_result_tables_reads_in_a_fresh_process(tmp_path):
    """train_info.embedding_metrics (the key before result tables) becomes the embedding table,
    even in a process where no backend was imported yet (the key is registered by the backend)."""
    import json
    import subprocess
    import sys

    from dashboard import synthetic

    legacy = synthetic.result(suite="emb", model="minilm", dataset="pairs", task="retrieval")
    row = {"split": "test", "model_state": "tuned", "dim": 64, "name": "ndcg@10", "value": 0.5,
           "share_of_full": 0.9}  # fmt: skip
    legacy["train_info"]["embedding_metrics"] = [row]
    (tmp_path / "result.json").write_text(json.dumps(legacy))
    code = (
        "import sys; from pathlib import Path; from harness.store.result import read_result; "
        "r = read_result(Path(sys.argv[1])); "
        "print(r.train_info.tables['embedding_metrics'].rows if r else 'unreadable')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "'ndcg@10'" in out.stdout and "0.9" in out.stdout, out.stdout
