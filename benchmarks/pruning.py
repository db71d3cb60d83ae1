"""Pruning benchmark: the same tuning suite with and without its pruner, same seeds.

Prints, per cell and in total, the compute used (train steps actually run, train seconds) and the
best validation score, then the ratios pruned / unpruned. Measured in one run; nothing is cached
between the two arms (each gets a fresh results folder).

    python benchmarks/pruning.py [suites/tune_smoke.yaml] [--out results/bench-pruning]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import duckdb

from harness.models.offline import configure_offline_mode
from harness.plan.plan import make_plan
from harness.suite.suite_file import load_suite
from harness.tuning.study import tune_plan

COMPUTE_SQL = """
SELECT r.method_key || '·' || r.model_key || '·' || r.dataset_key AS cell,
       count(*) AS trials,
       count(*) FILTER (WHERE r.status = 'pruned') AS pruned,
       sum(coalesce(c.steps, 0)) AS train_steps,
       sum(coalesce(r.train_s, 0)) AS train_s,
       sum(coalesce(r.total_s, 0)) AS run_s
FROM runs r
LEFT JOIN (SELECT run_id, max(step) AS steps FROM curves WHERE name = 'loss' GROUP BY run_id) c
    USING (run_id)
WHERE r.origin = 'trial'
GROUP BY ALL ORDER BY cell
"""


def run_arm(suite_path: Path, out: Path, pruner_type: str | None) -> dict[str, dict]:
    shutil.rmtree(out, ignore_errors=True)
    plan = make_plan(suite_path)
    pruner = plan.suite.tune.pruner
    if pruner_type:
        pruner = pruner.model_copy(update={"type": pruner_type})
    db = out / "ftbench.duckdb"
    report = tune_plan(plan, results_dir=out, db_path=db, pruner=pruner, final_runs=False)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(COMPUTE_SQL).df().set_index("cell").to_dict("index")
    for cell, study in report.studies.items():
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        rows[cell]["best"] = study.best_value if complete else float("nan")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suite", nargs="?", default="suites/tune_smoke.yaml")
    parser.add_argument("--out", default="results/bench-pruning")
    args = parser.parse_args(argv)
    configure_offline_mode()
    suite_path = Path(args.suite)
    suite = load_suite(suite_path)
    pruned_name = suite.tune.pruner.type
    if pruned_name == "none":
        print(f"{suite_path}: its pruner is 'none': nothing to compare", file=sys.stderr)
        return 2
    arms = {
        "none": run_arm(suite_path, Path(args.out) / "none", "none"),
        pruned_name: run_arm(suite_path, Path(args.out) / pruned_name, None),
    }
    print(f"\nPruning benchmark: {suite_path} ({suite.tune.trials} trials per cell, same seeds)")
    header = f"{'cell':40s} {'arm':10s} {'trials':>6s} {'pruned':>6s} {'steps':>6s} {'train s':>8s} {'run s':>7s} {'best val':>9s}"
    print(header)
    totals = {arm: {"train_steps": 0, "train_s": 0.0, "run_s": 0.0} for arm in arms}
    for cell in arms["none"]:
        for arm, rows in arms.items():
            row = rows[cell]
            for key in totals[arm]:
                totals[arm][key] += row[key]
            print(
                f"{cell:40s} {arm:10s} {row['trials']:6d} {row['pruned']:6d} "
                f"{int(row['train_steps']):6d} {row['train_s']:8.1f} {row['run_s']:7.1f} {row['best']:9.4f}"
            )
    base, pruned = totals["none"], totals[pruned_name]
    print(
        f"\ntotal train steps: {base['train_steps']:.0f} (none) vs {pruned['train_steps']:.0f} "
        f"({pruned_name}) -> ratio {pruned['train_steps'] / base['train_steps']:.2f}"
    )
    print(
        f"total train seconds: {base['train_s']:.1f} vs {pruned['train_s']:.1f} -> ratio "
        f"{pruned['train_s'] / base['train_s']:.2f}; whole-run seconds ratio "
        f"{pruned['run_s'] / base['run_s']:.2f}"
    )
    for cell in arms["none"]:
        b, p = arms["none"][cell]["best"], arms[pruned_name][cell]["best"]
        print(
            f"best validation {cell}: {b:.4f} (none) vs {p:.4f} ({pruned_name}), diff {p - b:+.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
