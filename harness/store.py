"""DuckDB store: schema (with schema_version), ingest of finished runs, leaderboard queries.

One writer: the runner's parent process ingests each finished run in one transaction and closes
the connection at once, so a reader (ftbench show, the dashboard) can open the file between runs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from harness.metrics import higher_is_better

SCHEMA_VERSION = 2
DEFAULT_DB = Path("results/ftbench.duckdb")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS suites (
    name VARCHAR, version INTEGER, description VARCHAR, path VARCHAR, config JSON,
    updated_at TIMESTAMP, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, suite VARCHAR, suite_version INTEGER, method_key VARCHAR,
    method VARCHAR, model_key VARCHAR, dataset_key VARCHAR, task VARCHAR, seed INTEGER,
    status VARCHAR, reason VARCHAR, traceback VARCHAR, headline_metric VARCHAR, config JSON,
    started_at TIMESTAMP, finished_at TIMESTAMP, load_s DOUBLE, train_s DOUBLE, eval_s DOUBLE,
    total_s DOUBLE, trainable_params BIGINT, total_params BIGINT, trainable_pct DOUBLE,
    peak_mem_bytes BIGINT, peak_mem_kind VARCHAR, cuda_max_allocated BIGINT,
    cuda_max_reserved BIGINT, train_tokens BIGINT, tokens_per_s DOUBLE, artifact_bytes BIGINT,
    precision_effective VARCHAR, notes JSON, result_path VARCHAR,
    origin VARCHAR DEFAULT 'run', tune_trials INTEGER);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, split VARCHAR, name VARCHAR, value DOUBLE, higher_is_better BOOLEAN,
    PRIMARY KEY (run_id, split, name));
CREATE TABLE IF NOT EXISTS curves (run_id VARCHAR, name VARCHAR, step INTEGER, value DOUBLE);
CREATE TABLE IF NOT EXISTS provenance (
    run_id VARCHAR PRIMARY KEY, git_commit VARCHAR, git_dirty BOOLEAN, python VARCHAR,
    packages JSON, device VARCHAR, cuda VARCHAR, compute_capability VARCHAR, model_id VARCHAR,
    model_revision VARCHAR, model_source VARCHAR, model_file_sha256 VARCHAR,
    dataset_fingerprint VARCHAR, seed INTEGER, config_hash VARCHAR);
CREATE TABLE IF NOT EXISTS trials (
    suite VARCHAR, method_key VARCHAR, model_key VARCHAR, dataset_key VARCHAR,
    study_name VARCHAR, number INTEGER, state VARCHAR, value DOUBLE, params JSON,
    intermediate JSON, duration_s DOUBLE, peak_mem_bytes BIGINT, run_id VARCHAR, status VARCHAR,
    reason VARCHAR, PRIMARY KEY (study_name, number));
CREATE TABLE IF NOT EXISTS expected_best (
    suite VARCHAR, method_key VARCHAR, model_key VARCHAR, dataset_key VARCHAR, metric VARCHAR,
    n_trials INTEGER, expected_best DOUBLE,
    PRIMARY KEY (suite, method_key, model_key, dataset_key, n_trials));
"""

# Each step takes the schema from version (index + 1) to the next; data is kept.
MIGRATIONS = [
    "ALTER TABLE runs ADD COLUMN origin VARCHAR DEFAULT 'run'; "
    "ALTER TABLE runs ADD COLUMN tune_trials INTEGER;",
]

RUN_TABLES = ("metrics", "curves", "provenance", "runs")


class SchemaMismatchError(RuntimeError):
    pass


@contextlib.contextmanager
def connect(
    db_path: Path | str = DEFAULT_DB, read_only: bool = False, retries: int = 50
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open briefly; retry while another process holds the write lock."""
    db_path = Path(db_path)
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries):
        try:
            con = duckdb.connect(str(db_path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == retries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    try:
        if not read_only:
            _ensure_schema(con)
        yield con
    finally:
        con.close()


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else None
    if version is not None and version < SCHEMA_VERSION:
        for step in MIGRATIONS[version - 1 : SCHEMA_VERSION - 1]:
            con.execute(step)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        version = SCHEMA_VERSION
    con.execute(SCHEMA)
    if version is None:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif version != SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"database schema_version {row[0]} != {SCHEMA_VERSION} expected by this ftbench; "
            "use a fresh --db path (or re-ingest the runs from results/runs)"
        )


def record_suite(db_path: Path | str, suite: Any, path: Path | str) -> None:
    with connect(db_path) as con:
        con.execute(
            "INSERT OR REPLACE INTO suites VALUES (?, ?, ?, ?, ?, now())",
            [suite.name, suite.version, suite.description, str(path), suite.model_dump_json()],
        )


def ingest(
    db_path: Path | str, result: dict[str, Any], result_path: Path | str | None = None
) -> None:
    """Insert one run (replacing any earlier row of the same run_id) in a single transaction."""
    spec = result["run_info"]["spec"]
    info = result["train_info"]
    meta = result.get("meta_info") or {}
    run_id = result["run_id"]
    timings = info.get("timings") or {}
    params = info.get("params") or {}
    memory = info.get("memory") or {}
    headline = spec["dataset"].get("metric") or _primary_metric(spec["dataset"]["task"])
    run_row = [
        run_id, spec["suite"], spec["suite_version"], spec["method_key"], spec["method"],
        spec["model_key"], spec["dataset_key"], spec["dataset"]["task"], spec["seed"],
        info["status"], info.get("reason"), info.get("traceback"), headline, json.dumps(spec),
        result["run_info"].get("started_at"), result["run_info"].get("finished_at"),
        timings.get("load_s"), timings.get("train_s"), timings.get("eval_s"), timings.get("total_s"),
        params.get("trainable_params"), params.get("total_params"), params.get("trainable_pct"),
        memory.get("peak_mem_bytes"), memory.get("peak_mem_kind"), memory.get("cuda_max_allocated"),
        memory.get("cuda_max_reserved"), info.get("train_tokens"), info.get("tokens_per_s"),
        info.get("artifact_bytes"), info.get("precision_effective"), json.dumps(info.get("notes") or {}),
        str(result_path) if result_path else None,
        _origin(spec), (spec.get("tuned") or {}).get("trials"),
    ]  # fmt: skip
    metric_rows = [
        [run_id, split, name, value, higher_is_better(name)]
        for split, values in (info.get("metrics") or {}).items()
        for name, value in values.items()
    ]
    curve_rows = [
        [run_id, name, point["step"], value]
        for point in info.get("curve") or []
        for name, value in point.items()
        if name != "step"
    ]
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(run_row))})", run_row)
            if metric_rows:
                con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", metric_rows)
            if curve_rows:
                con.executemany("INSERT INTO curves VALUES (?, ?, ?, ?)", curve_rows)
            if meta:
                con.execute(
                    "INSERT INTO provenance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        run_id, meta.get("git_commit"), meta.get("git_dirty"), meta.get("python"),
                        json.dumps(meta.get("packages")), meta.get("device"), meta.get("cuda"),
                        meta.get("compute_capability"), meta.get("model_id"), meta.get("model_revision"),
                        meta.get("model_source"), meta.get("model_file_sha256"),
                        meta.get("dataset_fingerprint"), meta.get("seed"), meta.get("config_hash"),
                    ],
                )  # fmt: skip
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _origin(spec: dict[str, Any]) -> str:
    return "trial" if spec.get("trial") else "tuned" if spec.get("tuned") else "run"


def ingest_trials(db_path: Path | str, suite: str, cell: Any, study: Any) -> None:
    """Mirror a study's trials into DuckDB (the journal file stays the source of truth)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration else None
        rows.append([
            suite, cell.method_key, cell.model_key, cell.dataset_key, study.study_name, t.number,
            t.state.name, t.value, json.dumps(t.params), json.dumps(t.intermediate_values),
            duration, None, t.user_attrs.get("run_id"), t.user_attrs.get("status"),
            t.user_attrs.get("reason"),
        ])  # fmt: skip
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM trials WHERE study_name = ?", [study.study_name])
        if rows:
            con.executemany(f"INSERT INTO trials VALUES ({', '.join('?' * 15)})", rows)
        # Peak memory comes from the trial's own run.
        con.execute(
            "UPDATE trials SET peak_mem_bytes = r.peak_mem_bytes FROM runs r "
            "WHERE trials.run_id = r.run_id AND trials.study_name = ?",
            [study.study_name],
        )
        con.execute("COMMIT")


def ingest_expected_best(
    db_path: Path | str, suite: str, cell: Any, metric: str, curve: list[float]
) -> None:
    keys = [suite, cell.method_key, cell.model_key, cell.dataset_key]
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "DELETE FROM expected_best WHERE suite = ? AND method_key = ? AND model_key = ? "
            "AND dataset_key = ?",
            keys,
        )
        if curve:
            con.executemany(
                "INSERT INTO expected_best VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[*keys, metric, n, value] for n, value in enumerate(curve, start=1)],
            )
        con.execute("COMMIT")


def _primary_metric(task: str) -> str:
    from harness.tasks import TASKS

    return TASKS.get(task).primary_metric


LEADERBOARD_SQL = """
WITH headline AS (
    SELECT r.*, m.value AS score, m.higher_is_better
    FROM runs r
    LEFT JOIN metrics m ON m.run_id = r.run_id AND m.split = 'test' AND m.name = r.headline_metric
    WHERE r.suite = $suite AND coalesce(r.origin, 'run') <> 'trial'
)
SELECT dataset_key AS dataset, model_key AS model, method_key AS method,
       coalesce(origin, 'run') AS origin, max(tune_trials) AS tune_trials,
       any_value(headline_metric) AS metric,
       avg(score) FILTER (WHERE status = 'ok') AS mean,
       stddev_samp(score) FILTER (WHERE status = 'ok') AS std,
       count(score) FILTER (WHERE status = 'ok') AS n,
       count(*) AS runs,
       string_agg(DISTINCT status, ',') FILTER (WHERE status <> 'ok') AS other_statuses,
       avg(trainable_pct) FILTER (WHERE status = 'ok') AS trainable_pct,
       max(peak_mem_bytes) FILTER (WHERE status = 'ok') / 2^30 AS peak_mem_gib,
       any_value(peak_mem_kind) AS mem_kind,
       avg(train_s) FILTER (WHERE status = 'ok') AS train_s,
       avg(tokens_per_s) FILTER (WHERE status = 'ok') AS tokens_per_s,
       bool_or(higher_is_better) AS higher_is_better
FROM headline
GROUP BY ALL
"""


def leaderboard(db_path: Path | str, suite: str):
    """One row per (dataset, model, method): mean ± std of the headline test metric over seeds."""
    with connect(db_path, read_only=True) as con:
        frame = con.execute(LEADERBOARD_SQL, {"suite": suite}).df()
    if frame.empty:
        return frame
    # Best first within each dataset/model, in the metric's own direction.
    frame["_key"] = frame["mean"].where(frame["higher_is_better"].fillna(True), -frame["mean"])
    frame = frame.sort_values(
        ["dataset", "model", "_key"], ascending=[True, True, False], na_position="last"
    )
    return frame.drop(columns=["_key"]).reset_index(drop=True)


def export(db_path: Path | str, out: Path, fmt: str, suite: str | None = None) -> int:
    """Write one row per (run, metric) with the run's config and measurements; returns row count."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}: use csv or parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    where = "WHERE r.suite = $suite" if suite else ""
    query = f"""
        SELECT r.* EXCLUDE (traceback, config), m.split, m.name AS metric, m.value, m.higher_is_better
        FROM runs r LEFT JOIN metrics m USING (run_id) {where}
        ORDER BY r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, m.name"""
    params = {"suite": suite} if suite else {}
    with connect(db_path, read_only=True) as con:
        frame = con.execute(query, params).df()
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame)
