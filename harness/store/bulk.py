"""Bulk synthetic runs for load tests (`dashboard/bench_query.py --bulk`): seeds copied in SQL.

Through `ingest`, one transaction per run, 100,000 runs take hours; here the seed-0 runs of a
suite (ingested the ordinary way) are copied to seeds 1..n-1 in one transaction: new run ids
(`<run_id>-<seed>`) and seeds, scores jittered by up to ±0.01, ~3 % of the copies `failed`
(their metrics dropped), and the same provenance, data-check and memory rows, so every table
and its shape are those of real ingests. For synthetic stores only: the scores mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from harness.store.schema import connect

# a copy of every seed-0 run of the suite per seed s in 1..n-1 (t.s)
_COPIES = "range(1, $n) t(s)"
_NEW_ID = "x.run_id || '-' || s::VARCHAR"
_SEED_ZERO = "x.run_id IN (SELECT run_id FROM runs WHERE suite = $suite AND seed = 0)"
COPY_RUNS_SQL = f"""
INSERT INTO runs SELECT x.* REPLACE ({_NEW_ID} AS run_id, s AS seed,
    CASE WHEN random() < 0.03 THEN 'failed' ELSE 'ok' END AS status)
FROM runs x, {_COPIES} WHERE {_SEED_ZERO}
"""
COPY_METRICS_SQL = f"""
INSERT INTO metrics SELECT x.* REPLACE ({_NEW_ID} AS run_id, x.value + 0.02 * (random() - 0.5) AS value)
FROM metrics x, {_COPIES} WHERE {_SEED_ZERO}
"""
COPIED_TABLES = ("provenance", "data_checks", "memory")  # the rows of a run, copied unchanged
DROP_FAILED_METRICS_SQL = """
DELETE FROM metrics WHERE run_id IN (SELECT run_id FROM runs WHERE suite = $suite AND status <> 'ok')
"""


def copy_seeds(db_path: Path | str, suite: str, n_seeds: int) -> None:
    """Copy every seed-0 run of `suite` to seeds 1..n_seeds-1 (see the module's docstring), in
    one transaction."""
    params = {"suite": suite, "n": n_seeds}
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(COPY_RUNS_SQL, params)
        con.execute(COPY_METRICS_SQL, params)
        for table in COPIED_TABLES:
            con.execute(
                f"INSERT INTO {table} SELECT x.* REPLACE ({_NEW_ID} AS run_id) "
                f"FROM {table} x, {_COPIES} WHERE {_SEED_ZERO}",
                params,
            )
        con.execute(DROP_FAILED_METRICS_SQL, {"suite": suite})
        con.execute("COMMIT")
