"""`ftbench export`: one row per run x metric, and one file per declared result table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.store.schema import connect, declared_tables, ensure_tables


class UnknownSuiteError(ValueError):
    """`export --suite NAME` of a suite with no runs in the database."""


def export(
    db_path: Path | str, out: Path, fmt: str, suite: str | None = None, examples: bool = False
) -> int:
    """Write one row per (run, metric) with the run's config and measurements, and beside it
    `<name>_<table>.<fmt>` for every result table with rows (e.g. scores per embedding width);
    with `examples`, `<name>_examples.<fmt>`: one row per run x split x metric x example with
    its id and score (the per-example scores the statistics read); returns the main file's row
    count."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}: use csv or parquet")
    ensure_tables(db_path)
    if suite:
        with connect(db_path, read_only=True) as con:
            known = [
                r[0] for r in con.execute("SELECT DISTINCT suite FROM runs ORDER BY 1").fetchall()
            ]
        if suite not in known:  # an empty file with exit 0 would look like a suite without runs
            from harness.suite.registry import did_you_mean

            raise UnknownSuiteError(
                f"no runs of suite {suite!r} in {db_path}{did_you_mean(suite, known)} "
                f"(suites there: {', '.join(known) or 'none'})"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
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
        extra = {}
        for table, declared in declared_tables(con).items():
            order = ", ".join(f"e.{c}" for c in declared["key"])
            extra[table] = con.execute(
                f"""SELECT r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, e.*
                FROM {table} e JOIN runs r USING (run_id) {where}
                ORDER BY r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, {order}""",
                params,
            ).df()
        if examples:
            extra["examples"] = con.execute(
                f"""SELECT r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, e.run_id,
                    e.split, e.metric, unnest(e.ids) AS example_id, unnest(e.scores) AS score
                FROM examples e JOIN runs r USING (run_id) {where}
                ORDER BY r.suite, r.dataset_key, r.model_key, r.method_key, r.seed, e.metric,
                    example_id""",
                params,
            ).df()
    _write_frame(frame, out, fmt)
    for table, rows in extra.items():
        if not rows.empty:  # long format (e.g. per width): a file of its own beside the main one
            _write_frame(rows, out.with_name(f"{out.stem}_{table}{out.suffix}"), fmt)
    return len(frame)


def _write_frame(frame: Any, out: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
