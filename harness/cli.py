"""ftbench command line: validate, ls, run, show, export, lock, repro."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from harness.hub import configure_offline_mode


def _suite_name(path_or_name: str) -> tuple[Path, str]:
    """Accept suites/NAME.yaml, a lock file (NAME.lock.json) or just NAME; the name is the one
    declared inside the file."""
    import json

    import yaml

    path = Path(path_or_name)
    if path.suffix == ".json":
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError, KeyError):
            return path, str(json.loads(path.read_text())["suite"]["name"])
        return path, path.name.removesuffix(".json").removesuffix(".lock")
    if path.suffix not in (".yaml", ".yml"):
        path = Path("suites") / f"{path_or_name}.yaml"
    name = path.stem
    if path.is_file():
        with contextlib.suppress(yaml.YAMLError, AttributeError):
            name = str(yaml.safe_load(path.read_text()).get("name", name))
    return path, name


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.suite import SuiteError, load_specs

    failed = 0
    for item in args.suites:
        path, _ = _suite_name(item)
        try:
            suite, specs = load_specs(path)
        except SuiteError as exc:
            failed += 1
            print(f"FAIL {exc}", file=sys.stderr)
            continue
        cells = len(specs) // len(suite.seeds)
        print(f"ok   {path}: {cells} cells x {len(suite.seeds)} seeds = {len(specs)} runs")
    return 1 if failed else 0


def cmd_ls(args: argparse.Namespace) -> int:
    from harness.backends import all_method_names
    from harness.data import DATA_SOURCES
    from harness.models import MODEL_ASSETS
    from harness.tasks import TASKS

    if args.suite:
        from harness.suite import load_specs

        _, specs = load_specs(_suite_name(args.suite)[0])
        for spec in specs:
            print(f"{spec.run_id}  {spec.label}")
        return 0
    for backend, names in all_method_names().items():
        print(f"methods ({backend}): " + ", ".join(names))
    print("tasks:        " + ", ".join(TASKS.names()))
    print("data sources: " + ", ".join(DATA_SOURCES.names()))
    print("model assets:")
    for name in MODEL_ASSETS.names():
        print(f"  {name:24s} {MODEL_ASSETS.get(name).description}")
    return 0


def _load(suite_arg: str):
    """(path, suite, specs), or None after printing the suite's error. A lock file gives its
    locked specs once its inputs are checked against the lock."""
    from harness.lock import LockError, is_lock_file, load_locked
    from harness.suite import SuiteError, load_specs

    path, _ = _suite_name(suite_arg)
    try:
        return (path, *(load_locked(path) if is_lock_file(path) else load_specs(path)))
    except (SuiteError, LockError) as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    from harness.preflight import unavailable_runs
    from harness.runner import run_suite

    loaded = _load(args.suite)
    if loaded is None:
        return 2
    path, suite, specs = loaded
    specs, over_budget = _apply_budget(specs)
    unavailable = unavailable_runs(specs)
    if unavailable:
        everything = len(unavailable) == len(specs)
        what = "nothing runs" if everything else "they are recorded as skipped"
        print(f"{len(unavailable)} of {len(specs)} runs of {path} cannot run here ({what}):")
        for reason in sorted(set(unavailable.values())):
            print(f"  - {reason}")
        if everything:
            return 3
    results_dir = Path(args.results)
    report = run_suite(
        suite, specs, path, results_dir=results_dir, db_path=_db(args), force=args.force,
        unavailable=unavailable, not_started=over_budget,
    )  # fmt: skip
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    print(
        f"suite {suite.name}: {len(report.executed)} run now, {len(report.skipped)} already done ({counts})"
    )
    return 0


def _apply_budget(specs: list) -> tuple[list, dict[str, tuple[str, str]]]:
    from harness.budget_plan import apply_budget

    specs, over, notes = apply_budget(specs)
    for note in notes:
        print(f"budget: {note}")
    return specs, over


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.budget_plan import format_plan, plan_runs

    loaded = _load(args.suite)
    if loaded is None:
        return 2
    path, suite, specs = loaded
    runs = plan_runs(specs)
    limit = suite.budget.limit_gb
    print(
        f"{path}: budget {suite.budget.profile}"
        + (
            f" ({limit:.1f} GB usable, over budget: {suite.budget.over_budget or 'skip'})"
            if limit
            else ""
        )
        + "; predicted peak GPU memory per run (GB = 1e9 bytes; nothing is run)"
    )
    print(format_plan(runs))
    over = sum(1 for r in runs if r.over_budget)
    adjusted = sum(1 for r in runs if r.adjustments)
    print(f"\n{len(runs)} runs: {over} over budget, {adjusted} adjusted to fit")
    return 0


def cmd_memcheck(args: argparse.Namespace) -> int:
    from harness.memcheck import collect, format_rows

    db = _db(args)
    if not db.exists():
        print(f"no results database at {db}: run a suite first", file=sys.stderr)
        return 1
    rows = collect(db, _suite_name(args.suite)[1] if args.suite else None)
    if not rows:
        print(f"no finished runs with a memory estimate in {db}", file=sys.stderr)
        return 1
    print(format_rows(rows))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.preflight import unavailable_runs
    from harness.tune import tune_suite

    loaded = _load(args.suite)
    if loaded is None:
        return 2
    path, suite, specs = loaded
    if suite.tune is None:
        print(f"{path}: no `tune:` block; add one (see README, Tuning)", file=sys.stderr)
        return 2
    specs, over_budget = _apply_budget(specs)
    specs = [s for s in specs if s.run_id not in over_budget]  # nothing to tune in those cells
    unavailable = unavailable_runs(specs)
    if unavailable:
        print(f"{path}: cannot tune here:", *sorted(set(unavailable.values())), sep="\n  - ")
        return 3
    pruner = suite.tune.pruner
    if args.pruner:
        pruner = pruner.model_copy(update={"type": args.pruner})
    results_dir = Path(args.results)
    report = tune_suite(
        suite, specs, path, results_dir=results_dir, db_path=_db(args), pruner=pruner,
        final_runs=not args.no_final,
    )  # fmt: skip
    for note in report.notes:
        print(f"note: {note}")
    for cell, study in report.studies.items():
        states: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        best = study.best_trial if states.get("complete") else None
        where = f"best {best.value:.4g} with {best.params}" if best else "no completed trial"
        print(f"{cell}: {states}; {where}")
    return 0


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else Path(args.results) / "ftbench.duckdb"


def cmd_show(args: argparse.Namespace) -> int:
    from harness.embedding.report import format_embedding_table
    from harness.report import format_leaderboard
    from harness.store import embedding_table, leaderboard, repro_history

    _, name = _suite_name(args.suite)
    db = _db(args)
    if not db.exists():
        print(f"no results database at {db}: run `ftbench run {args.suite}` first", file=sys.stderr)
        return 1
    frame = leaderboard(db, name)
    if frame.empty:
        print(f"no runs of suite {name!r} in {db}", file=sys.stderr)
        return 1
    print(format_leaderboard(frame, name))
    per_dim = embedding_table(db, name)
    if not per_dim.empty:
        print("\n" + format_embedding_table(per_dim))
    checks = repro_history(db, name)
    if not checks.empty:
        latest = checks.drop_duplicates("original_run_id")  # newest check of each run
        failed = latest[latest["verdict"] != "pass"]["original_run_id"].tolist()
        print(
            f"\nrepro: {len(latest) - len(failed)} of {len(latest)} checked runs reproduce"
            + (
                f"; failing: {', '.join(failed)} (`ftbench repro RUN_ID` for details)"
                if failed
                else ""
            )
        )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from harness.lock import LockError, write_lock
    from harness.suite import SuiteError

    path, _ = _suite_name(args.suite)
    try:
        out = write_lock(path, Path(args.out) if args.out else None)
    except (SuiteError, LockError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {out}: run it with `ftbench run {out}`")
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    from harness.repro import ReproError, format_check, reproduce, sample_run_ids

    if bool(args.run_id) == bool(args.suite):
        print("give a RUN_ID or --suite SUITE (not both)", file=sys.stderr)
        return 2
    results, db = Path(args.results), _db(args)
    checks = []
    try:
        run_ids = (
            sample_run_ids(db, _suite_name(args.suite)[1], args.sample, args.seed)
            if args.suite
            else [args.run_id]
        )
        for run_id in run_ids:
            check = reproduce(run_id, results, db)
            print(format_check(check), flush=True)
            checks.append(check)
    except ReproError as exc:
        print(exc, file=sys.stderr)
        return 2
    failed = sum(c["verdict"] != "pass" for c in checks)
    print(f"repro: {len(checks) - failed} of {len(checks)} passed (stored in {db}, repro_checks)")
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.store import export

    db = _db(args)
    if not db.exists():
        print(f"no results database at {db}", file=sys.stderr)
        return 1
    suite = _suite_name(args.suite)[1] if args.suite else None
    out = Path(args.out or Path(args.results) / "exports" / f"{suite or 'all'}.{args.format}")
    rows = export(db, out, args.format, suite)
    print(f"wrote {rows} rows to {out}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import subprocess

    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--", "--db", str(_db(args))]
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftbench", description=__doc__)
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--db", default=None, help="DuckDB file (default: RESULTS/ftbench.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check suite files; nothing runs")
    p.add_argument("suites", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "ls", help="list methods, tasks, data sources, model assets (or a suite's runs)"
    )
    p.add_argument("suite", nargs="?")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("run", help="run a suite (finished runs are skipped)")
    p.add_argument("suite", help="suites/NAME.yaml or NAME")
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plan", help="predict each run's peak GPU memory against the budget")
    p.add_argument("suite", help="suite name or path (suites/<name>.yaml)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("memcheck", help="predicted vs measured memory of the runs in DuckDB")
    p.add_argument("--suite", help="only this suite")
    p.set_defaults(func=cmd_memcheck)

    p = sub.add_parser("tune", help="Optuna search per cell, then re-run the best on every seed")
    p.add_argument("suite", help="suites/NAME.yaml or NAME (needs a tune: block)")
    p.add_argument(
        "--pruner", choices=["median", "hyperband", "threshold", "none"], help="override"
    )
    p.add_argument("--no-final", action="store_true", help="trials only, no tuned re-runs")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("show", help="print a suite's leaderboard from DuckDB")
    p.add_argument("suite")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("lock", help="pin a suite's resolved runs, model hashes, data fingerprints")
    p.add_argument("suite", help="suites/NAME.yaml or NAME")
    p.add_argument("-o", "--out", help="lock file (default: next to the suite, NAME.lock.json)")
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("repro", help="re-run finished runs from their stored spec and compare")
    p.add_argument("run_id", nargs="?", help="a run_id (see `ftbench ls SUITE`)")
    p.add_argument("--suite", help="check runs of this suite (its ok runs in the database)")
    p.add_argument("--sample", type=int, help="check a seeded sample of N runs (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.set_defaults(func=cmd_repro)

    p = sub.add_parser("dashboard", help="serve the Streamlit leaderboard over the results DB")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("export", help="export runs and metrics (one row per run x metric)")
    p.add_argument("--suite")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_offline_mode()  # before transformers is imported anywhere
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
