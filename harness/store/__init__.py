"""The DuckDB store: schema (with schema_version), ingest of finished runs, the leaderboard.

- schema.py   tables, migrations, connections, the result tables backends declare
- ingest.py   a finished run in one transaction; suites, tuning studies, repro checks
- result.py   RunResult: what one run produced (result.json), and the result tables backends declare
- queries.py  the provenance gate, per-run scores and the one leaderboard computation
- browse.py   the reads of the views (dashboard pages, frontier, repro, memcheck, embeddings)
- stats.py    statistics over seeds; frontier.py the reward-KL frontier's numbers; pareto.py the
              one Pareto front
- export.py   `ftbench export`
- bulk.py     synthetic seeds copied in SQL for load tests (`dashboard/bench_query.py --bulk`)
The store is the only code that runs SQL.
"""

from harness.store.export import export
from harness.store.ingest import (
    ingest,
    ingest_expected_best,
    ingest_trials,
    record_repro,
    record_suite,
)
from harness.store.queries import (
    SYSTEMS_ONLY_SPLIT,
    leaderboard,
    metric_means,
    repro_history,
    run_issues,
    run_scores,
    summarize,
)
from harness.store.schema import (
    DEFAULT_DB,
    SCHEMA_VERSION,
    DatabaseError,
    SchemaMismatchError,
    connect,
    open_connection,
)

__all__ = [
    "DEFAULT_DB", "SCHEMA_VERSION", "SYSTEMS_ONLY_SPLIT", "DatabaseError", "SchemaMismatchError",
    "connect", "export", "ingest", "ingest_expected_best", "ingest_trials", "leaderboard",
    "metric_means", "open_connection", "record_repro", "record_suite", "repro_history",
    "run_issues",
    "run_scores", "summarize",
]  # fmt: skip
