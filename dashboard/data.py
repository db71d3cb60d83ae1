"""All database access of the dashboard: pure functions of a DuckDB path, no Streamlit.

The runner's parent process is the single writer and takes DuckDB's file lock for each ingest. A
reader must never hold the file longer than one query, so every function here opens read-only,
runs its query, and closes; while the writer holds the lock it retries briefly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from harness import store

DEFAULT_DB = Path("results/ftbench.duckdb")
# Schema versions this dashboard knows: every version up to the one harness.store writes (the
# version lives there only). Versions only add tables and columns, so a newer file is still read
# (with a warning).
KNOWN_SCHEMA_VERSIONS = tuple(range(1, store.SCHEMA_VERSION + 1))
LOCK_RETRIES = 12  # with harness.store's backoff: ~9 s in all, far longer than one ingest

# Tables added by later features; pages for them show an empty state while they are absent.
OPTIONAL_TABLES = ("trials", "expected_best", "embedding_metrics", "repro_checks", "memory")
RUN_COLUMNS_R = (
    "r.run_id, r.suite, r.suite_version, r.method_key, r.method, r.model_key, r.dataset_key, "
    "r.task, r.seed, r.status"
)


class DataError(RuntimeError):
    """A problem worth showing to the user as a message (missing file, unreadable file, lock)."""


class DatabaseMissingError(DataError):
    pass


def resolve_db(cli_args: Sequence[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """`--db PATH` (after `--` on the streamlit command line) > $FTBENCH_DB > results/ftbench.duckdb."""
    args = list(cli_args or [])
    for i, arg in enumerate(args):
        if arg == "--db" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--db="):
            return Path(arg.split("=", 1)[1])
    env = os.environ if env is None else env
    return Path(env["FTBENCH_DB"]) if env.get("FTBENCH_DB") else DEFAULT_DB


def db_stamp(db: Path | str) -> tuple[int, int, int]:
    """Changes whenever the writer commits (file or WAL touched): part of every cache key."""
    stamp = [0, 0, 0]
    for i, path in enumerate((Path(db), Path(f"{db}.wal"))):
        with contextlib.suppress(OSError):
            st = path.stat()
            stamp[i] = st.st_mtime_ns
            stamp[2] += st.st_size
    return (stamp[0], stamp[1], stamp[2])


@contextlib.contextmanager
def connect(db: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(db)
    if not path.is_file():
        raise DatabaseMissingError(f"no results database at {path}")
    try:
        con = store.open_connection(path, read_only=True, retries=LOCK_RETRIES)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DataError(
                f"{path} stayed locked by a writer (is an ingest stuck?); try again: {exc}"
            ) from exc
        raise DataError(f"cannot open {path}: {exc}") from exc
    except duckdb.Error as exc:
        raise DataError(f"cannot open {path}: {exc}") from exc
    try:
        yield con
    finally:
        con.close()


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pd.DataFrame:
    try:
        return con.execute(sql, params or {}).df()
    except duckdb.Error as exc:
        raise DataError(f"query failed: {exc}") from exc


def _frame(db: Path | str, sql: str, params: Any = None) -> pd.DataFrame:
    with connect(db) as con:
        return _df(con, sql, params)


def _run_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = 'runs'"
    ).fetchall()
    return {r[0] for r in rows}


def _origin_sql(columns: set[str]) -> str:
    """origin ('run' | 'trial' | 'tuned') and tune_trials, constant on a v1 file without them."""
    if "origin" in columns:
        return "coalesce(r.origin, 'run') AS origin, r.tune_trials"
    return "'run' AS origin, CAST(NULL AS INTEGER) AS tune_trials"


def _not_trial_sql(columns: set[str]) -> str:
    # Tuning trials are scored on validation and are not leaderboard entries (cf. store.leaderboard).
    return "coalesce(r.origin, 'run') <> 'trial'" if "origin" in columns else "TRUE"


# Each function below opens the file once, however many queries it runs: fewer lock windows.


def overview(db: Path | str) -> dict[str, Any]:
    """Tables, schema_version, run count and one row per suite (counts by status)."""
    with connect(db) as con:
        names = set(
            _df(
                con, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            )["table_name"]
        )
        version = None
        if "meta" in names:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = row[0] if row else None
        suites = pd.DataFrame(columns=["suite", "runs", "ok", "last_finished"])
        if "runs" in names:
            suites = _df(
                con,
                """
                SELECT suite, count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok,
                       max(finished_at) AS last_finished
                FROM runs GROUP BY suite ORDER BY suite""",
            )
    return {
        "tables": sorted(names),
        "schema_version": version,
        "runs": int(suites["runs"].sum()),
        "suites": suites,
    }


def suite_choices(db: Path | str, suite: str, split: str = "test") -> dict[str, pd.DataFrame]:
    """`scopes`: every (dataset, model) with runs; `metrics`: (dataset, model, metric, direction,
    is headline, runs with a value) among leaderboard runs."""
    with connect(db) as con:
        not_trial = _not_trial_sql(_run_columns(con))
        scopes = _df(
            con,
            """
            SELECT dataset_key, model_key, count(*) AS runs
            FROM runs WHERE suite = $suite GROUP BY ALL ORDER BY ALL""",
            {"suite": suite},
        )
        metrics = _df(
            con,
            f"""
            SELECT r.dataset_key, r.model_key, m.name AS metric,
                   bool_or(m.higher_is_better) AS higher_is_better,
                   bool_or(m.name = r.headline_metric) AS headline, count(*) AS n
            FROM runs r JOIN metrics m ON m.run_id = r.run_id AND m.split = $split
            WHERE r.suite = $suite AND {not_trial}
            GROUP BY ALL ORDER BY ALL""",
            {"suite": suite, "split": split},
        )
    return {"scopes": scopes, "metrics": metrics}


def _store(fn: Any, db: Path | str, *args: Any, **kwargs: Any) -> Any:
    """A harness.store reader over `db`, with this layer's errors (a missing or unreadable file,
    a lock held too long)."""
    path = Path(db)
    if not path.is_file():
        raise DatabaseMissingError(f"no results database at {path}")
    try:
        return fn(path, *args, **kwargs)
    except duckdb.Error as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def run_scores(
    db: Path | str,
    suite: str,
    dataset: str,
    metric: str,
    model: str | None = None,
    split: str = "test",
    with_config: bool = False,
) -> pd.DataFrame:
    """One row per leaderboard run of a suite/dataset (and model, unless None) with its value of
    `metric` (harness.store.run_scores: failed runs and runs without the metric are kept, with a
    NaN score; tuning trials and systems-only runs are left out)."""
    return _store(
        store.run_scores, db, suite, dataset=dataset, model=model, metric=metric, split=split,
        with_config=with_config,
    )  # fmt: skip


def leaderboard(
    db: Path | str,
    suite: str,
    dataset: str,
    model: str | None,
    metric: str,
    clauses: tuple[Any, ...] = (),
) -> pd.DataFrame:
    """The store's leaderboard (the one `ftbench show` prints) of one dataset / model / metric,
    over the runs the filter keeps."""
    from dashboard.stats import apply_filter

    return _store(
        store.leaderboard, db, suite, dataset=dataset, model=model, metric=metric,
        where=(lambda runs: apply_filter(runs, clauses)) if clauses else None,
    )  # fmt: skip


def pareto(
    db: Path | str, suite: str, dataset: str, metric: str, model: str | None, clauses=()
) -> pd.DataFrame:
    """The leaderboard's cells of a dataset (every model when None) with a config summary of
    each: the points of the Pareto page."""
    from dashboard.stats import apply_filter
    from dashboard.tables import config_summary
    from harness.store.queries import entries

    runs = run_scores(db, suite, dataset, metric, model, "test", True)
    runs = apply_filter(runs, clauses) if clauses else runs
    board = store.summarize(runs.drop(columns=["config"]))
    configs: dict[tuple[str, ...], str] = {}
    for r, entry in zip(runs.itertuples(), entries(runs), strict=True):  # a cell's first run
        configs.setdefault((r.dataset_key, r.model_key, r.metric, entry), config_summary(r.config))
    board["config"] = [
        configs.get((r.dataset, r.model, r.metric, r.entry), "") for r in board.itertuples()
    ]
    return board


def runs_index(db: Path | str, suite: str | None = None) -> pd.DataFrame:
    """Runs for pickers (tuning trials included), newest first, with their headline test value."""
    with connect(db) as con:
        return _df(
            con,
            f"""
            SELECT {RUN_COLUMNS_R}, {_origin_sql(_run_columns(con))},
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
    with connect(db) as con:
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


def embedding_table(db: Path | str) -> pd.DataFrame:
    """Per-width base/tuned test scores of every suite (the embedding backend's query); empty
    while no embedding run was stored."""
    from harness.backends.embedding.report import embedding_table

    return _store(embedding_table, db)


def alignment_suites(db: Path | str) -> list[str]:
    """Suites with at least one alignment policy run (the Alignment frontier page's choices)."""
    from harness.backends.alignment.frontier import suites_with_policies

    return _store(suites_with_policies, db)


def alignment_runs(db: Path | str, suite: str) -> pd.DataFrame:
    """A suite's alignment policy runs with KL, judge score, win rate, family and setting (the
    alignment backend's query, which `ftbench show` summarises too)."""
    from harness.backends.alignment.frontier import policy_runs

    return _store(policy_runs, db, suite)


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_name = ?",
            [table],
        ).fetchone()[0]
    )


def optional_table(db: Path | str, table: str, limit: int = 5000) -> pd.DataFrame | None:
    """Rows of a table added by a later feature, or None when the file does not have it yet."""
    if table not in OPTIONAL_TABLES:  # the name is spliced into SQL: whitelist only
        raise ValueError(f"{table!r} is not one of {OPTIONAL_TABLES}")
    with connect(db) as con:
        if not _has_table(con, table):
            return None
        try:
            return con.execute(f'SELECT * FROM "{table}" LIMIT {int(limit)}').df()
        except duckdb.Error as exc:
            raise DataError(f"cannot read table {table}: {exc}") from exc


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def memory_checks(db: Path | str) -> pd.DataFrame:
    """Predicted against measured memory, one row per run and quantity (harness.memory.check)."""
    from harness.memory.check import collect

    try:
        rows = collect(db)
    except duckdb.CatalogException:  # a database from before the memory table
        rows = []
    return pd.DataFrame(
        [
            {
                "run_id": r.run_id,
                "run": r.label,
                "method": r.label.split("·")[1] if r.label.count("·") >= 2 else r.label,
                "what": r.kind,
                "predicted_mb": r.predicted / 1e6,
                "measured_mb": None if r.measured is None else r.measured / 1e6,
                "error_pct": None if r.error is None else 100 * r.error,
                "t4_verdict_right": r.verdict_ok,
            }
            for r in rows
        ],
        columns=["run_id", "run", "method", "what", "predicted_mb", "measured_mb", "error_pct",
                 "t4_verdict_right"],
    )  # fmt: skip
