"""Databases written by older ftbench versions (schema v1, v2, v3) open and ingest with this code.

tests/store_versions/vN/ holds a real file of each version as text: written by the old checkout's
own store code (the commit is in vN/COMMIT; make_old.py says how), exported by DuckDB. Each is
rebuilt here, opened by the current store, and must end up with exactly the tables and columns of
a fresh database, with the old runs intact and a new run ingested beside them.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dashboard.synthetic import result
from harness import store

VERSIONS = Path(__file__).resolve().parent / "store_versions"


def old_database(version: int, db: Path) -> Path:
    src = VERSIONS / f"v{version}"
    with duckdb.connect(str(db)) as con:
        con.execute((src / "schema.sql").read_text())
        con.execute((src / "load.sql").read_text().replace("@DIR@", str(src)))
    return db


def columns(db: Path) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, type)] in order, views included (what a query sees)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        out.setdefault(table, []).append((column, kind))
    return out


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_old_database_is_migrated_and_ingests(version, tmp_path):
    assert version < store.SCHEMA_VERSION
    db = old_database(version, tmp_path / f"v{version}.duckdb")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT value FROM meta").fetchall() == [(str(version),)]
        old_ids = sorted(r[0] for r in con.execute("SELECT run_id FROM runs").fetchall())
    assert len(old_ids) == 2

    new = result(suite="old", method="ia3", seed=0, metrics={"accuracy": 0.7})
    new["train_info"]["speed"] = {"steady_tokens_per_s": 321.0, "first_step_s": 0.5}
    store.ingest(db, new)

    fresh = tmp_path / "fresh.duckdb"
    with store.connect(fresh):
        pass
    assert columns(db) == columns(fresh)  # every migration ran: same tables, columns, types
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(store.SCHEMA_VERSION),
        )
        rows = con.execute(
            "SELECT run_id, status, origin, steady_tokens_per_s FROM runs ORDER BY run_id"
        ).fetchall()
        assert sorted(r[0] for r in rows) == sorted([*old_ids, new["run_id"]])
        by_id = {r[0]: r[1:] for r in rows}
        for run_id in old_ids:  # migrated rows: the new columns' defaults, NULL where unmeasured
            assert by_id[run_id][1:] == ("run", None)
        assert by_id[new["run_id"]] == ("ok", "run", 321.0)
    scores = store.run_scores(db, "old", dataset="rt", model="tiny", metric="accuracy").set_index(
        "method_key"
    )
    assert scores.loc["lora", "score"] == pytest.approx(0.61)  # written by the old code
    assert scores.loc["ia3", "score"] == pytest.approx(0.7)
    assert scores.loc["full", "status"] == "failed"
