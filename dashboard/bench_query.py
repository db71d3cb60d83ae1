"""Load test of the leaderboard query on a DuckDB of SYNTHETIC runs (default 10,000).

    .venv/bin/python dashboard/bench_query.py [--runs 10000] [--db PATH] [--repeat 7] [--bulk]

The runs go through the real harness.store.ingest (one transaction per run, as the runner does),
so building the file takes minutes (~10 runs/s: 100,000 runs take hours); with --bulk only the
first seed of every cell is ingested and the store copies its rows to the other seeds
(harness/store/bulk.py: new run ids, seeds and scores; seconds; the tables and their shapes are
the same). An existing --db with enough runs is reused. Scores, memory and times are random
numbers: only the timings printed at the end mean anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import data, synthetic  # noqa: E402
from harness.store import bulk, ingest  # noqa: E402

DATASETS = ("synth-a", "synth-b")
MODELS = ("model-0", "model-1", "model-2", "model-3", "model-4")
METHODS = tuple(f"method-{i:02d}" for i in range(20))
SUITE = "loadtest"


def build(db: Path, n_runs: int, seed: int = 0) -> None:
    """Ingest n_runs synthetic runs: datasets × models × methods × seeds (~3% not ok)."""
    rng = np.random.default_rng(seed)
    per_seed = len(DATASETS) * len(MODELS) * len(METHODS)
    n_seeds = -(-n_runs // per_seed)
    count = 0
    started = time.perf_counter()
    for s in range(n_seeds):
        for dataset in DATASETS:
            for model in MODELS:
                for m, method in enumerate(METHODS):
                    if count == n_runs:
                        return
                    roll = rng.random()
                    status = "ok" if roll > 0.03 else ("failed" if roll > 0.01 else "oom")
                    quality = 0.5 + 0.01 * m + rng.normal(0, 0.02)
                    ok = status == "ok"
                    ingest(
                        db,
                        synthetic.result(
                            suite=SUITE,
                            method=method,
                            model=model,
                            dataset=dataset,
                            seed=s,
                            status=status,
                            metrics={"accuracy": quality, "macro_f1": quality - 0.02}
                            if ok
                            else None,
                            reason=None if ok else f"synthetic {status}",
                            peak_mem_bytes=int(rng.uniform(1, 20) * synthetic.GIB),
                            mem_kind="cuda_max_allocated",
                            train_s=float(rng.uniform(10, 100)),
                            trainable_pct=float(10 ** rng.uniform(-3, 2)),
                        ),
                    )
                    count += 1
                    if count % 1000 == 0:
                        rate = count / (time.perf_counter() - started)
                        print(f"  ingested {count}/{n_runs} ({rate:.0f} runs/s)", flush=True)


def build_bulk(db: Path, n_runs: int, seed: int = 0) -> None:
    """Seed 0 of every cell through ingest, then whole seeds copied by the store up to n_runs
    (harness/store/bulk.py: new run ids, seeds, scores and statuses; the same tables)."""
    per_seed = len(DATASETS) * len(MODELS) * len(METHODS)
    build(db, per_seed, seed)
    bulk.copy_seeds(db, SUITE, -(-n_runs // per_seed))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--db", type=Path, help="reused when it already holds --runs runs")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bulk", action="store_true", help="copy seeds in SQL (see above)")
    args = parser.parse_args(argv)

    db = args.db or Path(tempfile.mkdtemp(prefix="ftbench-bench-")) / "loadtest.duckdb"
    have = data.overview(db)["runs"] if db.is_file() else 0
    if have < args.runs:
        print(f"building {db}: {args.runs} SYNTHETIC runs through harness.store.ingest ...")
        t0 = time.perf_counter()
        (build_bulk if args.bulk else build)(db, args.runs)
        print(f"  built in {time.perf_counter() - t0:.0f} s")
    info = data.overview(db)
    print(f"{db}: {info['runs']} runs (synthetic load-test data; the scores mean nothing)")

    dataset, model, metric = DATASETS[0], MODELS[0], "accuracy"

    def sql() -> object:
        return data.run_scores(db, SUITE, dataset, metric, model)

    def board() -> object:
        return data.leaderboard(db, SUITE, dataset, model, metric)

    def all_models() -> object:
        return data.pareto(db, SUITE, dataset, metric, None)

    n_rows = len(sql())
    results = [
        (f"run_scores SQL ({n_rows} runs of one dataset × model: the filtered path)", sql),
        ("store leaderboard (SQL + mean/std/t CI/paired tests/Holm, 20 methods)", board),
        ("pareto cells (all models of a dataset, with configs)", all_models),
        (
            "overview SQL (tables, schema, per-suite counts over all runs)",
            lambda: data.overview(db),
        ),
    ]
    print(f"median of {args.repeat} (uncached: the dashboard adds st.cache_data on top)")
    for label, fn in results:
        median, times = timed(fn, args.repeat)
        print(
            f"  {label}: {median * 1000:.1f} ms  (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
