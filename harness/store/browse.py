"""Reads for the views: the dashboard's pages, the alignment frontier, repro, memcheck and the
embedding report ask here; none of them runs SQL itself.

The runner's parent process is the single writer and takes DuckDB's file lock for each ingest. A
reader never holds the file longer than one call: every function opens read-only, runs its
queries and closes, retrying briefly while the writer holds the lock. A file written by an older
ftbench is brought up to date first (harness.store.schema.ensure_tables), so every query here can
rely on the current schema; a file from a newer ftbench is refused with the fix.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from harness.store.schema import (
    NOT_TRIAL,
    SchemaMismatchError,
    ensure_tables,
    open_connection,
    table_names,
)

READ_RETRIES = 12  # with open_connection's backoff: ~9 s in all, far longer than one ingest

# Tables of later features or of one backend; their pages show an empty state while absent.
OPTIONAL_TABLES = ("trials", "expected_best", "embedding_metrics", "repro_checks", "memory")
RUN_COLUMNS = (
    "r.run_id, r.suite, r.suite_version, r.method_key, r.method, r.model_key, r.dataset_key, "
    "r.task, r.seed, r.status"
)


class ReadError(RuntimeError):
    """A problem worth showing the user as a message (an unreadable file, a lock held too long)."""


class DatabaseMissingError(ReadError):
    pass


@contextlib.contextmanager
def reading(db: Path | str, retries: int = READ_RETRIES) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-only connection to an up-to-date file, with this layer's errors."""
    path = Path(db)
    if not path.is_file():
        raise DatabaseMissingError(f"no results database at {path}")
    try:
        ensure_tables(path)
        con = open_connection(path, read_only=True, retries=retries)
    except SchemaMismatchError as exc:
        raise ReadError(str(exc)) from exc
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise ReadError(
                f"{path} stayed locked by a writer (is an ingest stuck?); try again: {exc}"
            ) from exc
        raise ReadError(f"cannot open {path}: {exc}") from exc
    except duckdb.Error as exc:
        raise ReadError(f"cannot open {path}: {exc}") from exc
    try:
        yield con
    except duckdb.Error as exc:
        raise ReadError(f"query failed on {path}: {exc}") from exc
    finally:
        con.close()


def guarded(fn: Any, db: Path | str, *args: Any, **kwargs: Any) -> Any:
    """Another store reader (harness.store.queries) over `db`, with this layer's errors."""
    path = Path(db)
    if not path.is_file():
        raise DatabaseMissingError(f"no results database at {path}")
    try:
        return fn(path, *args, **kwargs)
    except SchemaMismatchError as exc:
        raise ReadError(str(exc)) from exc
    except duckdb.Error as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc


def _frame(db: Path | str, sql: str, params: Any = None) -> pd.DataFrame:
    with reading(db) as con:
        return con.execute(sql, params or {}).df()


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


# --- the dashboard's pages -------------------------------------------------------------------


def overview(db: Path | str) -> dict[str, Any]:
    """Tables, run count and one row per suite (runs, ok runs, last finished)."""
    with reading(db) as con:
        names = table_names(con)
        suites = con.execute(
            """
            SELECT suite, count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok,
                   max(finished_at) AS last_finished
            FROM runs GROUP BY suite ORDER BY suite"""
        ).df()
    return {"tables": sorted(names), "runs": int(suites["runs"].sum()), "suites": suites}


def suite_choices(db: Path | str, suite: str, split: str = "test") -> dict[str, pd.DataFrame]:
    """`scopes`: every (dataset, model) with runs; `metrics`: (dataset, model, metric, direction,
    is headline, runs with a value) among leaderboard runs."""
    with reading(db) as con:
        scopes = con.execute(
            """
            SELECT dataset_key, model_key, count(*) AS runs
            FROM runs WHERE suite = $suite GROUP BY ALL ORDER BY ALL""",
            {"suite": suite},
        ).df()
        metrics = con.execute(
            f"""
            SELECT r.dataset_key, r.model_key, m.name AS metric,
                   bool_or(m.higher_is_better) AS higher_is_better,
                   bool_or(m.name = r.headline_metric) AS headline, count(*) AS n
            FROM runs r JOIN metrics m ON m.run_id = r.run_id AND m.split = $split
            WHERE r.suite = $suite AND {NOT_TRIAL}
            GROUP BY ALL ORDER BY ALL""",
            {"suite": suite, "split": split},
        ).df()
    return {"scopes": scopes, "metrics": metrics}


def runs_index(db: Path | str, suite: str | None = None) -> pd.DataFrame:
    """Runs for pickers (tuning trials included), newest first, with their headline test value."""
    return _frame(
        db,
        f"""
        SELECT {RUN_COLUMNS}, coalesce(r.origin, 'run') AS origin, r.tune_trials,
               r.headline_metric, m.value AS headline_value, r.finished_at
        FROM runs r
        LEFT JOIN metrics m
               ON m.run_id = r.run_id AND m.split = 'test' AND m.name = r.headline_metric
        WHERE $suite IS NULL OR r.suite = $suite
        ORDER BY r.finished_at DESC NULLS LAST, r.suite, r.dataset_key, r.model_key,
                 r.method_key, r.seed""",
        {"suite": suite},
    )


def run_detail(db: Path | str, run_id: str) -> dict[str, Any] | None:
    """The run row, its metrics, curves and provenance; None when there is no such run."""
    with reading(db) as con:
        run = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df()
        if run.empty:
            return None
        metrics = con.execute(
            "SELECT split, name, value, higher_is_better FROM metrics WHERE run_id = ? "
            "ORDER BY split, name",
            [run_id],
        ).df()
        curves = con.execute(
            "SELECT name, step, value FROM curves WHERE run_id = ? ORDER BY name, step", [run_id]
        ).df()
        prov = con.execute("SELECT * FROM provenance WHERE run_id = ?", [run_id]).df()
    row = run.iloc[0].to_dict()
    row["config"] = _json(row.get("config"))
    row["notes"] = _json(row.get("notes"))
    provenance = prov.iloc[0].to_dict() if not prov.empty else None
    if provenance is not None:
        provenance["packages"] = _json(provenance.get("packages"))
    return {"run": row, "metrics": metrics, "curves": curves, "provenance": provenance}


def run_configs(db: Path | str, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    frame = _frame(
        db,
        "SELECT run_id, config FROM runs WHERE list_contains($ids, run_id)",
        {"ids": list(run_ids)},
    )
    return {r.run_id: _json(r.config) or {} for r in frame.itertuples()}


def run_metrics(db: Path | str, run_ids: Sequence[str], split: str = "test") -> pd.DataFrame:
    return _frame(
        db,
        "SELECT run_id, name, value, higher_is_better FROM metrics "
        "WHERE list_contains($ids, run_id) AND split = $split ORDER BY name",
        {"ids": list(run_ids), "split": split},
    )


def curves(db: Path | str, run_ids: Sequence[str]) -> pd.DataFrame:
    return _frame(
        db,
        "SELECT run_id, name, step, value FROM curves WHERE list_contains($ids, run_id) "
        "ORDER BY run_id, name, step",
        {"ids": list(run_ids)},
    )


def optional_table(db: Path | str, table: str, limit: int = 5000) -> pd.DataFrame | None:
    """Rows of a table added by a later feature or a backend, or None while the file has none."""
    if table not in OPTIONAL_TABLES:  # the name is spliced into SQL: whitelist only
        raise ValueError(f"{table!r} is not one of {OPTIONAL_TABLES}")
    with reading(db) as con:
        if table not in table_names(con):
            return None
        return con.execute(f'SELECT * FROM "{table}" LIMIT {int(limit)}').df()


# --- backends' views -------------------------------------------------------------------------

EMBEDDING_SQL = f"""
SELECT r.suite, r.dataset_key AS dataset, r.model_key AS model, r.method_key AS method,
       e.name AS metric, e.dim,
       avg(e.value) FILTER (WHERE e.model_state = 'base') AS base,
       avg(e.value) FILTER (WHERE e.model_state = 'tuned') AS tuned,
       tuned - base AS delta,
       avg(e.share_of_full) FILTER (WHERE e.model_state = 'base') AS base_share_of_full,
       avg(e.share_of_full) FILTER (WHERE e.model_state = 'tuned') AS tuned_share_of_full,
       count(DISTINCT r.run_id) AS n
FROM embedding_metrics e JOIN runs r USING (run_id)
WHERE ($suite IS NULL OR r.suite = $suite) AND e.split = 'test' AND r.status = 'ok'
    AND {NOT_TRIAL}
GROUP BY ALL
ORDER BY r.suite, dataset, model, metric, e.dim DESC, method
"""


def embedding_scores(db: Path | str, suite: str | None = None) -> pd.DataFrame:
    """Per (suite, dataset, model, method, metric, dim): base and tuned test scores (mean over
    seeds), tuned - base, and the share of the full-width score kept at that width; empty when
    no embedding run was ever stored."""
    with reading(db) as con:
        if "embedding_metrics" not in table_names(con):
            return pd.DataFrame()
        return con.execute(EMBEDDING_SQL, {"suite": suite}).df()


def suites_with(db: Path | str, methods: Sequence[str], tasks: Sequence[str]) -> list[str]:
    """The suites that stored at least one run of these methods on these tasks."""
    with reading(db) as con:
        rows = con.execute(
            "SELECT DISTINCT suite FROM runs WHERE list_contains($m, method) "
            "AND list_contains($t, task) ORDER BY suite",
            {"m": list(methods), "t": list(tasks)},
        ).fetchall()
    return [r[0] for r in rows]


def upstream_links(db: Path | str, role: str) -> dict[str, str]:
    """run_id -> the run_id of its upstream run in `role` (e.g. the judge that scored it)."""
    with reading(db) as con:
        rows = con.execute(
            "SELECT run_id, upstream_run_id FROM run_links WHERE role = ?", [role]
        ).fetchall()
    return dict(rows)


# --- repro and memcheck ----------------------------------------------------------------------


def result_path(db: Path | str, run_id: str) -> Path | None:
    """Where a stored run's result.json was written (None: no such run, or no path)."""
    with reading(db) as con:
        row = con.execute("SELECT result_path FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return Path(row[0]) if row and row[0] else None


def ok_run_ids(db: Path | str, suite: str) -> list[str]:
    """The finished (ok) leaderboard runs of a suite, by run_id."""
    with reading(db) as con:
        rows = con.execute(
            f"SELECT run_id FROM runs r WHERE suite = ? AND status = 'ok' AND {NOT_TRIAL} "
            "ORDER BY run_id",
            [suite],
        ).fetchall()
    return [r[0] for r in rows]


MEMORY_SQL = """
SELECT r.run_id, r.suite, r.method_key, r.model_key, r.status, r.peak_mem_kind,
       r.cuda_max_allocated, r.cuda_max_reserved, m.cuda_cap_bytes, m.estimate, m.measured_state
FROM runs r JOIN memory m USING (run_id)
WHERE ($suite IS NULL OR r.suite = $suite) AND r.status IN ('ok', 'oom')
ORDER BY r.suite, r.method_key, r.model_key
"""


def memory_records(db: Path | str, suite: str | None = None) -> list[dict[str, Any]]:
    """Per run that stored a memory record (ok or oom): its peak, cap, estimate and measured
    state bytes (the last two decoded from JSON)."""
    with reading(db) as con:
        cursor = con.execute(MEMORY_SQL, {"suite": suite})
        names = [d[0] for d in cursor.description]
        records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for record in records:
        record["estimate"] = json.loads(record["estimate"] or "{}")
        record["measured_state"] = _json(record["measured_state"]) or None
    return records
