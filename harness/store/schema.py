"""The DuckDB schema (with schema_version and migrations), connections, and result tables.

One writer: the runner's parent process ingests each finished run in one transaction and closes
the connection at once, so a reader (ftbench show, the dashboard) can open the file between runs.
Besides the common tables, a backend may declare tables of its own (harness.store.result.ResultTable);
the store creates each on first ingest and remembers it in `result_tables`.
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

SCHEMA_VERSION = 4
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
    origin VARCHAR DEFAULT 'run', tune_trials INTEGER, steady_tokens_per_s DOUBLE,
    steady_samples_per_s DOUBLE, first_step_s DOUBLE);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, split VARCHAR, name VARCHAR, value DOUBLE, higher_is_better BOOLEAN,
    PRIMARY KEY (run_id, split, name));
CREATE TABLE IF NOT EXISTS curves (run_id VARCHAR, name VARCHAR, step INTEGER, value DOUBLE);
CREATE TABLE IF NOT EXISTS provenance (
    run_id VARCHAR PRIMARY KEY, git_commit VARCHAR, git_dirty BOOLEAN, python VARCHAR,
    packages JSON, device VARCHAR, cuda VARCHAR, compute_capability VARCHAR, model_id VARCHAR,
    model_revision VARCHAR, model_source VARCHAR, model_file_sha256 VARCHAR,
    dataset_fingerprint VARCHAR, seed INTEGER, config_hash VARCHAR,
    model_revision_requested VARCHAR);
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
CREATE TABLE IF NOT EXISTS repro_checks (
    original_run_id VARCHAR, repro_dir VARCHAR, suite VARCHAR, checked_at TIMESTAMP,
    verdict VARCHAR, mode VARCHAR, rel_tol DOUBLE, abs_tol DOUBLE, original_status VARCHAR,
    repro_status VARCHAR, failures JSON, metric_deltas JSON, env_differences JSON,
    PRIMARY KEY (original_run_id, repro_dir));
CREATE TABLE IF NOT EXISTS run_links (
    run_id VARCHAR, role VARCHAR, upstream_run_id VARCHAR, PRIMARY KEY (run_id, role));
CREATE TABLE IF NOT EXISTS result_tables (name VARCHAR PRIMARY KEY, columns JSON, key JSON);
"""

# The provenance gate, per run: a leaderboard row needs complete provenance from a clean tree and
# passing data checks (harness/backends/checks.py decides the data issues at run time).
# The one "not a tuning trial" rule: trials are scored on validation and are never leaderboard
# entries, nor repro or report rows (queries alias the runs table `r`).
NOT_TRIAL = "coalesce(r.origin, 'run') <> 'trial'"

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
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS origin VARCHAR DEFAULT 'run'; "
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS tune_trials INTEGER;",
    # v3: steady-state speed (harness/run/speed.py); older runs keep NULL (they timed no steps).
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS steady_tokens_per_s DOUBLE; "
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS steady_samples_per_s DOUBLE; "
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS first_step_s DOUBLE;",
    # v4: the revision a suite asked for (a branch, a tag) beside the commit it resolved to.
    "ALTER TABLE provenance ADD COLUMN IF NOT EXISTS model_revision_requested VARCHAR;",
]

# Tables holding rows of one run (deleted and re-inserted when the run is ingested again);
# declared result tables are added to these.
RUN_TABLES = ("metrics", "curves", "provenance", "data_checks", "memory", "run_links", "runs")


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


def ensure_tables(db_path: Path | str) -> None:
    """A file written by an older ftbench may lack newer tables or columns: bring it up to date
    once (a write), before reading it."""
    with connect(db_path, read_only=True) as con:
        present = table_names(con)
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    current = row is not None and row[0] == str(SCHEMA_VERSION)
    if not current or not {"data_checks", "repro_checks", "memory", "run_links",
                           "result_tables"} <= present:  # fmt: skip
        with connect(db_path):
            pass


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def declared_tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Result tables created so far: name -> {columns, key}."""
    rows = con.execute("SELECT name, columns, key FROM result_tables").fetchall()
    return {name: {"columns": json.loads(c), "key": json.loads(k)} for name, c, k in rows}


def declare_table(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
    """Create a backend's result table on first use; a table of the same name declared with
    other columns is refused, naming both (a backend changed its table: a migration is due)."""
    from harness.store.result import IDENTIFIER

    if not IDENTIFIER.match(name):  # spliced into SQL: a checked identifier, never free text
        raise ValueError(f"result table name {name!r}: lower-case identifier expected")
    wanted = {"columns": table.columns, "key": table.key}
    known = declared_tables(con).get(name)
    if known is None and name in table_names(con):  # made before result tables were declared
        cols = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "AND column_name <> 'run_id' ORDER BY ordinal_position",
            [name],
        ).fetchall()
        known = {"columns": dict(cols), "key": table.key}
    if known is not None and list(known["columns"]) != list(table.columns):
        raise SchemaMismatchError(
            f"result table {name!r} exists with columns {list(known['columns'])}, but the run "
            f"declares {list(table.columns)}: use a fresh --db path or migrate the table"
        )
    columns = ", ".join(f"{col} {kind}" for col, kind in table.columns.items())
    key = ", ".join(["run_id", *table.key])
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {name} (run_id VARCHAR, {columns}, PRIMARY KEY ({key}))"
    )
    con.execute(
        "INSERT OR REPLACE INTO result_tables VALUES (?, ?, ?)",
        [name, json.dumps(wanted["columns"]), json.dumps(wanted["key"])],
    )
