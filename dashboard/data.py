"""The dashboard's reads: thin calls into harness.store (the only code that runs SQL) and the
public API. No Streamlit, no SQL here: the pages format what the store returns.

The runner's parent process is the single writer; every read opens the file read-only for one
call (harness/store/browse.py), so an open dashboard never blocks an ingest for long.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import harness
from harness import store
from harness.store import browse
from harness.store.browse import (
    DatabaseMissingError,
    curves,
    optional_table,
    overview,
    run_configs,
    run_detail,
    run_metrics,
    runs_index,
    suite_choices,
)
from harness.store.browse import (
    ReadError as DataError,
)

__all__ = [
    "DataError", "DatabaseMissingError", "alignment_runs", "alignment_suites", "curves",
    "db_stamp", "embedding_table", "leaderboard", "memory_checks", "optional_table", "overview",
    "pareto", "resolve_db", "run_configs", "run_detail", "run_metrics", "run_scores",
    "runs_index", "suite_choices",
]  # fmt: skip

DEFAULT_DB = store.DEFAULT_DB


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
    return browse.guarded(
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

    return browse.guarded(
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


def embedding_table(db: Path | str) -> pd.DataFrame:
    """Per-width base/tuned test scores of every suite; empty while no embedding run was stored."""
    return browse.embedding_scores(db)


def alignment_suites(db: Path | str) -> list[str]:
    """Suites with at least one alignment policy run (the Alignment frontier page's choices)."""
    return browse.guarded(harness.frontier_suites, db)


def alignment_runs(db: Path | str, suite: str) -> pd.DataFrame:
    """A suite's alignment policy runs with KL, judge score, win rate, family and setting (what
    `ftbench show` summarises too)."""
    return browse.guarded(harness.frontier_runs, db, suite)


def memory_checks(db: Path | str) -> pd.DataFrame:
    """Predicted against measured memory, one row per run and quantity (`ftbench memcheck`)."""
    return browse.guarded(harness.memory_checks, db)
