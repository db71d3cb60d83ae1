"""DuckDB store: schema (with schema_version), ingest of finished runs, leaderboard queries.

One writer: the runner's parent process ingests each finished run in one transaction and closes
the connection at once, so a reader (ftbench show, the dashboard) can open the file between runs.
"""

from __future__ import annotations

import contextlib
import json
import random
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
CREATE TABLE IF NOT EXISTS data_checks (
    run_id VARCHAR PRIMARY KEY, overlap_validation INTEGER, overlap_test INTEGER,
    near_overlap_validation INTEGER, near_overlap_test INTEGER, truncated_share DOUBLE,
    input_shortened_share DOUBLE, eos_trained_share DOUBLE, dropped_examples INTEGER,
    pad_token VARCHAR, eos_token VARCHAR, pad_is_eos BOOLEAN, issues JSON, checks JSON);
CREATE TABLE IF NOT EXISTS memory (
    run_id VARCHAR PRIMARY KEY, systems_only BOOLEAN, weights_dtype VARCHAR,
    cuda_cap_bytes BIGINT, predicted_cuda_bytes BIGINT, predicted_cpu_bytes BIGINT,
    estimate JSON, measured_state JSON, budget_adjustments JSON);
CREATE TABLE IF NOT EXISTS embedding_metrics (
    run_id VARCHAR, split VARCHAR, model_state VARCHAR, dim INTEGER, name VARCHAR, value DOUBLE,
    share_of_full DOUBLE, PRIMARY KEY (run_id, split, model_state, dim, name));
CREATE TABLE IF NOT EXISTS repro_checks (
    original_run_id VARCHAR, repro_dir VARCHAR, suite VARCHAR, checked_at TIMESTAMP,
    verdict VARCHAR, mode VARCHAR, rel_tol DOUBLE, abs_tol DOUBLE, original_status VARCHAR,
    repro_status VARCHAR, failures JSON, metric_deltas JSON, env_differences JSON,
    PRIMARY KEY (original_run_id, repro_dir));
CREATE TABLE IF NOT EXISTS run_links (
    run_id VARCHAR, role VARCHAR, upstream_run_id VARCHAR, PRIMARY KEY (run_id, role));
"""

# The provenance gate, per run: a leaderboard row needs complete provenance from a clean tree and
# passing data checks (harness/checks.py decides the data issues at run time).
REQUIRED_PACKAGES = ("torch", "transformers", "peft", "trl", "datasets")
_HAS_PROVENANCE = "p.run_id IS NOT NULL"
_PACKAGES_MISSING = " OR ".join(
    f"json_extract_string(p.packages, '$.{name}') IS NULL" for name in REQUIRED_PACKAGES
)
RUN_ISSUES_SQL = f"""
SELECT r.run_id, r.suite, r.status, r.dataset_key, r.model_key, r.method_key,
    coalesce(r.origin, 'run') AS origin,
    [x FOR x IN [
        CASE WHEN p.run_id IS NULL THEN 'no provenance' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.git_commit IS NULL THEN 'no git commit' END,
        CASE WHEN p.git_dirty THEN 'dirty tree' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.git_dirty IS NULL THEN 'dirty flag unknown' END,
        CASE WHEN {_HAS_PROVENANCE} AND ({_PACKAGES_MISSING}) THEN 'package versions missing' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.model_revision IS NULL AND p.model_file_sha256 IS NULL
            THEN 'no model revision or file hash' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.dataset_fingerprint IS NULL
            THEN 'no dataset fingerprint' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.seed IS NULL THEN 'no seed' END,
        CASE WHEN {_HAS_PROVENANCE} AND p.config_hash IS NULL THEN 'no config hash' END
    ] IF x IS NOT NULL] AS provenance_issues,
    CASE WHEN d.run_id IS NULL THEN ['no data checks']
        ELSE from_json(d.issues, '["VARCHAR"]') END AS data_issues
FROM runs r LEFT JOIN provenance p USING (run_id) LEFT JOIN data_checks d USING (run_id)
"""
VIEWS = f"""
CREATE OR REPLACE VIEW run_issues AS
SELECT *, len(provenance_issues) = 0 AS provenance_ok, len(data_issues) = 0 AS data_ok
FROM ({RUN_ISSUES_SQL});
"""

# Each step takes the schema from version (index + 1) to the next; data is kept.
MIGRATIONS = [
    "ALTER TABLE runs ADD COLUMN origin VARCHAR DEFAULT 'run'; "
    "ALTER TABLE runs ADD COLUMN tune_trials INTEGER;",
]

RUN_TABLES = (
    "metrics",
    "curves",
    "provenance",
    "data_checks",
    "memory",
    "embedding_metrics",
    "run_links",
    "runs",
)
# Systems-only runs (`weights: random`) measure memory and speed; their quality metrics are kept
# under this split, so no ranking (which reads `test`) ever sees them.
SYSTEMS_ONLY_SPLIT = "systems_only"
QUALITY_RUN = "coalesce(json_extract_string(r.config, '$.model.weights'), 'pretrained') <> 'random'"


class SchemaMismatchError(RuntimeError):
    pass


def open_connection(
    db_path: Path | str, read_only: bool = False, retries: int = 40, backoff_s: float = 0.02
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while another process holds its lock (DuckDB allows one writer
    process, and readers must wait for it). The wait grows x1.6 per try, capped at 2 s, with
    jitter so a reader polling in step with the writer cannot starve it; the last lock error is
    raised when the retries run out."""
    for attempt in range(retries + 1):
        try:
            return duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == retries:
                raise
            time.sleep(min(2.0, backoff_s * 1.6**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def connect(
    db_path: Path | str = DEFAULT_DB, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open briefly (see open_connection); a writer connection brings the schema up to date."""
    db_path = Path(db_path)
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    con = open_connection(db_path, read_only=read_only)
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
    con.execute(VIEWS)
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
    systems_only = ((spec.get("model") or {}).get("weights") or "pretrained") == "random"
    metric_rows = [
        [run_id, SYSTEMS_ONLY_SPLIT if systems_only else split, name, value, higher_is_better(name)]
        for split, values in (info.get("metrics") or {}).items()
        for name, value in values.items()
    ]
    estimate = memory.get("estimate") or {}
    memory_row = [
        run_id, systems_only, memory.get("weights_dtype"), memory.get("cuda_cap_bytes"),
        ((estimate.get("cuda") or {}).get("parts") or {}).get("total"),
        ((estimate.get("cpu") or {}).get("parts") or {}).get("total"),
        json.dumps(estimate), json.dumps(memory.get("measured_state")),
        json.dumps(spec.get("budget_adjustments")),
    ]  # fmt: skip
    curve_rows = [
        [run_id, name, point["step"], value]
        for point in info.get("curve") or []
        for name, value in point.items()
        if name != "step"
    ]
    data = info.get("data_checks")
    embedding_rows = [  # per truncated width, base and tuned (harness/embedding)
        [run_id, r["split"], r["model_state"], r["dim"], r["name"], r["value"], r["share_of_full"]]
        for r in info.get("embedding_metrics") or []
    ]
    link_rows = [[run_id, role, up] for role, up in (spec.get("upstream") or {}).items()]
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
            if link_rows:
                con.executemany("INSERT INTO run_links VALUES (?, ?, ?)", link_rows)
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
            con.execute(
                f"INSERT INTO memory VALUES ({', '.join('?' * len(memory_row))})", memory_row
            )
            if data:
                con.execute(
                    f"INSERT INTO data_checks VALUES ({', '.join('?' * 14)})",
                    _data_row(run_id, data),
                )
            if embedding_rows:
                con.executemany(
                    "INSERT INTO embedding_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", embedding_rows
                )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _data_row(run_id: str, data: dict[str, Any]) -> list[Any]:
    overlap, near = data.get("overlap") or {}, data.get("near_overlap") or {}
    return [
        run_id, overlap.get("validation"), overlap.get("test"), near.get("validation"),
        near.get("test"), data.get("truncated_share"), data.get("input_shortened_share"),
        data.get("eos_trained_share"), data.get("dropped_examples"), data.get("pad_token"),
        data.get("eos_token"), data.get("pad_is_eos"), json.dumps(data.get("issues") or []),
        json.dumps(data),
    ]  # fmt: skip


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


LEADERBOARD_SQL = f"""
WITH issues AS ({RUN_ISSUES_SQL}),
headline AS (
    SELECT r.*, m.value AS score, m.higher_is_better,
        list_concat(i.provenance_issues, i.data_issues) AS issues
    FROM runs r
    LEFT JOIN metrics m ON m.run_id = r.run_id AND m.split = 'test' AND m.name = r.headline_metric
    LEFT JOIN issues i ON i.run_id = r.run_id
    WHERE r.suite = $suite AND coalesce(r.origin, 'run') <> 'trial' AND {QUALITY_RUN}
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
       bool_or(higher_is_better) AS higher_is_better,
       count(*) FILTER (WHERE status = 'ok' AND len(issues) > 0) AS flagged,
       array_to_string(list_sort(list_distinct(flatten(
           list(issues) FILTER (WHERE status = 'ok')))), '; ') AS issues
FROM headline
GROUP BY ALL
"""


def leaderboard(db_path: Path | str, suite: str):
    """One row per (dataset, model, method): mean ± std of the headline test metric over seeds."""
    _ensure_tables(db_path)
    with connect(db_path, read_only=True) as con:
        frame = con.execute(LEADERBOARD_SQL, {"suite": suite}).df()
    if frame.empty:
        return frame
    headline = cell_stats(db_path, suite)
    headline = headline[headline["headline"]]
    frame = frame.merge(
        headline[[*CELL_KEYS, "ci_low", "ci_high", "trimmed_mean", "diverged", "valid"]],
        on=CELL_KEYS,
        how="left",
    )
    # Best first within each dataset/model, in the metric's own direction; invalid cells last.
    frame["_key"] = frame["mean"].where(frame["higher_is_better"].fillna(True), -frame["mean"])
    frame["_invalid"] = ~frame["valid"].fillna(True).astype(bool)
    frame = frame.sort_values(
        ["dataset", "model", "_invalid", "_key"],
        ascending=[True, True, True, False],
        na_position="last",
    )
    return frame.drop(columns=["_key", "_invalid"]).reset_index(drop=True)


CELL_KEYS = ["dataset", "model", "method", "origin"]
CELL_STATS_SQL = f"""
SELECT r.dataset_key AS dataset, r.model_key AS model, r.method_key AS method,
       coalesce(r.origin, 'run') AS origin, r.run_id, r.status, r.headline_metric,
       m.name AS metric, m.value
FROM runs r LEFT JOIN metrics m ON m.run_id = r.run_id AND m.split = 'test'
WHERE r.suite = $suite AND coalesce(r.origin, 'run') <> 'trial' AND {QUALITY_RUN}
"""


def cell_stats(db_path: Path | str, suite: str):
    """One row per cell (dataset, model, method, origin) and test metric, over the cell's seeds:
    n, mean, std, bootstrap 95% CI, trimmed mean (5+ seeds), diverged seeds and validity."""
    import pandas as pd

    from harness import stats

    with connect(db_path, read_only=True) as con:
        rows = con.execute(CELL_STATS_SQL, {"suite": suite}).df()
    out = []
    for key, cell in rows.groupby(CELL_KEYS, sort=True):
        diverged = cell.loc[cell["status"] == "diverged", "run_id"].nunique()
        ok = cell[(cell["status"] == "ok") & cell["metric"].notna()]
        headline = cell["headline_metric"].dropna().iloc[0]
        for metric in sorted(set(ok["metric"]) | {headline}):
            values = ok.loc[ok["metric"] == metric, "value"].tolist()
            out.append({
                **dict(zip(CELL_KEYS, key, strict=True)),
                "metric": metric,
                "headline": metric == headline,
                "higher_is_better": higher_is_better(metric),
                "runs": cell["run_id"].nunique(),
                **stats.summarize(values, diverged),
            })  # fmt: skip
    columns = [*CELL_KEYS, "metric", "headline", "higher_is_better", "runs", "n", "mean", "std",
               "ci_low", "ci_high", "trimmed_mean", "diverged", "valid"]  # fmt: skip
    return pd.DataFrame(out, columns=columns)


EMBEDDING_SQL = """
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
    AND coalesce(r.origin, 'run') <> 'trial'
GROUP BY ALL
ORDER BY r.suite, dataset, model, metric, e.dim DESC, method
"""


def embedding_table(db_path: Path | str, suite: str | None = None):
    """Per (suite, dataset, model, method, metric, dim): base and tuned test scores (mean over
    seeds), tuned - base, and the share of the full-width score kept at that width."""
    _ensure_tables(db_path)
    with connect(db_path, read_only=True) as con:
        return con.execute(EMBEDDING_SQL, {"suite": suite}).df()


def run_issues(db_path: Path | str, suite: str | None = None):
    """Per run: provenance_issues, data_issues (lists) and provenance_ok / data_ok."""
    _ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT *, len(provenance_issues) = 0 AS provenance_ok, "
            f"len(data_issues) = 0 AS data_ok FROM ({RUN_ISSUES_SQL}) {where} ORDER BY run_id",
            {"suite": suite} if suite else {},
        ).df()


def _ensure_tables(db_path: Path | str) -> None:
    """A file written by an older ftbench may lack the newer tables: add them once (a write)."""
    with connect(db_path, read_only=True) as con:
        present = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
    if not {"data_checks", "repro_checks", "memory", "embedding_metrics", "run_links"} <= present:
        with connect(db_path):
            pass


def record_repro(db_path: Path | str, check: dict[str, Any]) -> None:
    """Store one repro check (see harness/repro.py)."""
    tol = check["tolerance"]
    row = [
        check["original_run_id"], check["repro_dir"], check.get("suite"), check["checked_at"],
        check["verdict"], tol["mode"], tol.get("rel_tol"), tol.get("abs_tol"),
        check.get("original_status"), check.get("repro_status"), json.dumps(check["failures"]),
        json.dumps(check["metric_deltas"]), json.dumps(check["env_differences"]),
    ]  # fmt: skip
    with connect(db_path) as con:
        con.execute(f"INSERT OR REPLACE INTO repro_checks VALUES ({', '.join('?' * 13)})", row)


def repro_history(db_path: Path | str, suite: str | None = None):
    """Every stored repro check (newest first), optionally of one suite."""
    _ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT * FROM repro_checks {where} ORDER BY checked_at DESC",
            {"suite": suite} if suite else {},
        ).df()


def export(db_path: Path | str, out: Path, fmt: str, suite: str | None = None) -> int:
    """Write one row per (run, metric) with the run's config and measurements; returns row count."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}: use csv or parquet")
    _ensure_tables(db_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _ensure_tables(db_path)
    where = "WHERE r.suite = $suite" if suite else ""
    query = f"""
        SELECT r.* EXCLUDE (traceback, config), l.upstream, m.split, m.name AS metric, m.value,
            m.higher_is_better
        FROM runs r LEFT JOIN metrics m USING (run_id)
        LEFT JOIN (SELECT run_id, string_agg(role || '=' || upstream_run_id, ';' ORDER BY role)
                   AS upstream FROM run_links GROUP BY run_id) l USING (run_id) {where}
        ORDER BY r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, m.name"""
    params = {"suite": suite} if suite else {}
    with connect(db_path, read_only=True) as con:
        frame = con.execute(query, params).df()
        embedding = con.execute(
            f"""SELECT r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, e.*
            FROM embedding_metrics e JOIN runs r USING (run_id) {where}
            ORDER BY r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, e.split,
                e.model_state, e.name, e.dim DESC""",
            params,
        ).df()
    _write_frame(frame, out, fmt)
    if not embedding.empty:  # long format per width: a file of its own beside the main one
        _write_frame(embedding, out.with_name(f"{out.stem}_embedding_metrics{out.suffix}"), fmt)
    return len(frame)


def _write_frame(frame: Any, out: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
