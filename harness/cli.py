"""ftbench command line: validate, ls, plan, run, tune, show, export, merge, lock, repro, memcheck.

Every command that names runs goes through the plan (harness/plan/plan.py), so `ls`, `plan`, `lock`,
`run` and `tune` agree on every run_id. A suite is given as suites/NAME.yaml, as a path, or by
the `name:` it declares; a lock file (NAME.lock.json) runs exactly what it locked.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.models.offline import configure_offline_mode


def _plan(args: argparse.Namespace, **kwargs):
    """The plan of args.suite (narrowed by --only), or None after printing why there is none."""
    from harness.plan.lock import LockError
    from harness.plan.plan import make_plan
    from harness.suite.suite_file import SuiteError

    try:
        return make_plan(
            args.suite, only=getattr(args, "only", None), shard=getattr(args, "shard", None),
            overrides=getattr(args, "set", None) or (),
            **kwargs,
        )  # fmt: skip
    except (SuiteError, LockError) as exc:
        print(exc, file=sys.stderr)
        return None


def _name(suite_arg: str) -> str:
    from harness.suite.suite_file import suite_name

    return suite_name(suite_arg)


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else Path(args.results) / "ftbench.duckdb"


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.suite.suite_file import SuiteError, expand, load_suite, locate

    failed = 0
    for item in args.suites:
        try:
            path = locate(item)
            suite = load_suite(path)
            specs = expand(suite)
        except SuiteError as exc:
            failed += 1
            print(f"FAIL {exc}", file=sys.stderr)
            continue
        cells = len(specs) // len(suite.seeds)
        print(f"ok   {path}: {cells} cells x {len(suite.seeds)} seeds = {len(specs)} runs")
    return 1 if failed else 0


def cmd_ls(args: argparse.Namespace) -> int:
    from harness.backends import all_method_names
    from harness.backends.data import DATA_SOURCES
    from harness.models import MODEL_ASSETS
    from harness.suite.tasks import TASKS

    if args.suite:
        plan = _plan(args, availability=False)
        if plan is None:
            return 2
        for run in plan.runs:
            marks = [
                *(["stage"] if run.stage else []),
                *(["over budget"] if run.over_budget else []),
                *([f"adjusted: {'; '.join(run.adjustments)}"] if run.adjustments else []),
            ]
            print(
                f"{run.spec.run_id}  {run.spec.label}"
                + (f"  [{', '.join(marks)}]" if marks else "")
            )
        return 0
    for backend, names in all_method_names().items():
        print(f"methods ({backend}): " + ", ".join(names))
    print("tasks:        " + ", ".join(TASKS.names()))
    print("data sources: " + ", ".join(DATA_SOURCES.names()))
    print("model assets:")
    for name in MODEL_ASSETS.names():
        print(f"  {name:24s} {MODEL_ASSETS.get(name).description}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.plan.plan import format_plan

    plan = _plan(args, estimates=True)
    if plan is None:
        return 2
    if args.format == "json":
        print(json.dumps(plan.to_json(), indent=2))
        return 0
    budget = plan.suite.budget
    limit = budget.limit_gb
    print(
        f"{plan.source}: budget {budget.profile}"
        + (
            f" ({limit:.1f} GB usable, over budget: {budget.over_budget or 'skip'})"
            if limit
            else ""
        )
        + "; predicted peak GPU memory per run (GB = 1e9 bytes; nothing is run)"
    )
    print(format_plan(plan))
    over = sum(1 for r in plan.runs if r.over_budget)
    adjusted = sum(1 for r in plan.runs if r.adjustments)
    unavailable = sum(1 for r in plan.runs if r.unavailable)
    print(
        f"\n{len(plan.runs)} runs: {over} over budget, {adjusted} adjusted to fit"
        + (f", {unavailable} cannot run here (model or data unavailable)" if unavailable else "")
    )
    return 0


def _print_plan_notes(plan) -> bool:
    """What the plan changed or will not run; False when nothing at all can run here."""
    for run in plan.runs:
        if run.adjustments:
            print(
                f"budget: {run.spec.label}: {'; '.join(run.adjustments)} ({run.fitted.verdict.reason})"
            )
    over = [r for r in plan.runs if r.over_budget and not r.unavailable]
    if over:
        print(
            f"budget: {len(over)} of {len(plan.runs)} runs are predicted over budget (recorded, not run)"
        )
    unavailable = [r for r in plan.runs if r.unavailable]
    if unavailable:
        everything = len(unavailable) == len(plan.runs)
        what = "nothing runs" if everything else "they are recorded as skipped"
        print(
            f"{len(unavailable)} of {len(plan.runs)} runs of {plan.source} cannot run here ({what}):"
        )
        for reason in sorted({r.unavailable for r in unavailable}):
            print(f"  - {reason}")
        return not everything
    return True


def _executor(args: argparse.Namespace, plan):
    """The executor of the suite's `executor:` block, with the command line's flags over it."""
    from harness.runs.executors import ExecutorConfig, build

    config = plan.suite.executor or ExecutorConfig()
    flags = {
        "kind": args.executor, "address": args.address, "parallel": args.parallel,
        "artifacts": args.artifacts,
    }  # fmt: skip
    config = ExecutorConfig.model_validate(
        {**config.model_dump(), **{k: v for k, v in flags.items() if v is not None}}
    )
    if config.address == "none":
        config = config.model_copy(update={"address": None})
    return build(config)


def _trackers_ok(args: argparse.Namespace, plan) -> bool:
    """`--report-to` or each run's training.report_to name trackers that exist and are
    installed here."""
    from harness.backends.trainer_args import check_trackers, report_to

    with _report_to(args):
        names = sorted({name for run in plan.runs for name in report_to(run.spec)})
    problems = check_trackers(names)
    for problem in problems:
        print(f"{plan.source}: {problem}", file=sys.stderr)
    return not problems


@contextlib.contextmanager
def _report_to(args: argparse.Namespace) -> Iterator[None]:
    """`--report-to` for this command: in FTBENCH_REPORT_TO, which run processes inherit."""
    import os

    from harness.backends.trainer_args import REPORT_TO_ENV

    before = os.environ.get(REPORT_TO_ENV)
    if args.report_to is not None:
        os.environ[REPORT_TO_ENV] = args.report_to
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(REPORT_TO_ENV, None)
        else:
            os.environ[REPORT_TO_ENV] = before


def _set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE",
        help="override a suite field for this command (repeatable), e.g. --set "
        "training.max_steps=50; VALUE is YAML; an overridden run is a new run_id",
    )  # fmt: skip


def _report_to_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-to", metavar="TRACKERS",
        help="comma-separated trackers the trainers log to (tensorboard, mlflow, wandb, trackio; "
        "'' for none), over each run's training.report_to; not part of any run_id",
    )  # fmt: skip


def _runnable_plan(args: argparse.Namespace):
    """_plan for the commands that run something: (plan or None, exit code when None)."""
    from harness.plan.plan import NothingRunsHere

    try:
        plan = _plan(args, require_runnable=True)
    except NothingRunsHere as exc:
        print(*exc.lines(), sep="\n")
        return None, 3
    return plan, 2


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runs.runner import run_plan

    plan, refused = _runnable_plan(args)
    if plan is None:
        return refused
    if not _trackers_ok(args, plan):
        return 2
    if not _print_plan_notes(plan):
        return 3
    with _report_to(args):
        report = run_plan(
            plan, results_dir=Path(args.results), db_path=_db(args), force=args.force,
            executor=_executor(args, plan),
        )  # fmt: skip
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    print(
        f"suite {plan.suite.name}: {len(report.executed)} run now, "
        f"{len(report.skipped)} already done ({counts})"
    )
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.tuning.study import tune_plan

    plan, refused = _runnable_plan(args)
    if plan is None:
        return refused
    if not _trackers_ok(args, plan):
        return 2
    if plan.suite.tune is None:
        print(f"{plan.source}: no `tune:` block; add one (see README, Tuning)", file=sys.stderr)
        return 2
    unavailable = sorted({r.unavailable for r in plan.runs if r.unavailable})
    if unavailable:
        print(f"{plan.source}: cannot tune here:", *unavailable, sep="\n  - ")
        return 3
    pruner = plan.suite.tune.pruner
    if args.pruner:
        pruner = pruner.model_copy(update={"type": args.pruner})
    with _report_to(args):
        report = tune_plan(
            plan, results_dir=Path(args.results), db_path=_db(args), pruner=pruner,
            final_runs=not args.no_final, executor=_executor(args, plan), storage=args.storage,
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


def cmd_memcheck(args: argparse.Namespace) -> int:
    from harness.show.memcheck import collect, format_rows

    db = _db(args)
    if not db.exists():
        print(f"no results database at {db}: run a suite first", file=sys.stderr)
        return 1
    rows = collect(db, _name(args.suite) if args.suite else None)
    if not rows:
        print(f"no finished runs with a memory estimate in {db}", file=sys.stderr)
        return 1
    print(format_rows(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from harness import store
    from harness.backends import BACKENDS
    from harness.show.leaderboard import format_board, format_leaderboard

    name, db = _name(args.suite), _db(args)
    if not db.exists():
        print(f"no results database at {db}: run `ftbench run {args.suite}` first", file=sys.stderr)
        return 1
    board = store.leaderboard(db, name)
    if board.empty:
        print(f"no runs of suite {name!r} in {db}", file=sys.stderr)
        return 1
    if args.format != "text":
        print(format_board(board, args.format))
        return 0
    print(format_leaderboard(board, name))
    for backend in BACKENDS:
        section = BACKENDS.get(backend).report(db, name)
        if section:
            print("\n" + section)
    checks = store.repro_history(db, name)
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
    from harness.plan.lock import LockError, write_lock

    plan = _plan(args, availability=False)
    if plan is None:
        return 2
    if plan.locked:
        print(
            f"{plan.source} is a lock file already: lock the suite it was made from",
            file=sys.stderr,
        )
        return 2
    try:
        out = write_lock(plan, Path(args.out) if args.out else None)
    except LockError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {out}: run it with `ftbench run {out}`")
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    from harness.runs.repro import ReproError, format_check, reproduce, sample_run_ids

    if bool(args.run_id) == bool(args.suite):
        print("give a RUN_ID or --suite SUITE (not both)", file=sys.stderr)
        return 2
    results, db = Path(args.results), _db(args)
    checks = []
    try:
        run_ids = (
            sample_run_ids(db, _name(args.suite), args.sample, args.seed)
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
    from harness.store.export import UnknownSuiteError

    db = _db(args)
    if not db.exists():
        print(f"no results database at {db}", file=sys.stderr)
        return 1
    suite = _name(args.suite) if args.suite else None
    out = Path(args.out or Path(args.results) / "exports" / f"{suite or 'all'}.{args.format}")
    try:
        rows = export(db, out, args.format, suite, examples=args.examples)
    except UnknownSuiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {rows} rows to {out}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.store import SchemaMismatchError
    from harness.store.merge import merge

    into = Path(args.into)
    try:
        report = merge([Path(s) for s in args.sources], into)
    except (FileNotFoundError, ValueError, SchemaMismatchError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for source in args.sources:
        print(
            f"{source}: {report.added.get(source, 0)} runs added, "
            f"{report.same.get(source, 0)} already there with the same results"
        )
    if report.folders_missing:
        print(
            f"{len(report.folders_missing)} merged runs have no run folder here (result.json "
            "not found); copy each machine's RESULTS/runs/ next to its database to keep them"
        )
    for conflict in report.conflicts:
        print(conflict, file=sys.stderr)
    print(
        f"merged into {into}" + (f"; {len(report.conflicts)} conflicts" if report.conflicts else "")
    )
    return 1 if report.conflicts else 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import subprocess

    from harness.suite.extras import require

    require("dashboard")

    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    # Loopback unless asked: the app has no login and shows every config, path and traceback.
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.address, "--server.port", str(args.port),
        "--browser.gatherUsageStats", "false",
        "--", "--db", str(_db(args)),
    ]  # fmt: skip
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"serving on {args.address}:{args.port} with no login: anyone who reaches it sees "
            "every result, config and traceback",
            file=sys.stderr,
        )
    return subprocess.call(command)


def _executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor", choices=["local", "ray"],
        help="where runs execute: local (one at a time, the default) or ray (overrides the "
        "suite's executor: block)",
    )  # fmt: skip
    p.add_argument(
        "--address",
        help="ray: auto (a cluster started on this machine), ray://HOST:10001, or none (start a "
        "local Ray for this command; the default)",
    )
    p.add_argument("--parallel", type=int, help="ray: runs in flight at most")
    p.add_argument(
        "--artifacts",
        help="ray: a folder every node can write (or an fsspec URL) each run folder is copied "
        "to; without it weights stay on the node that ran them (recorded with the run)",
    )


SHARD_HELP = (
    "run the K-th of N slices of the suite (K/N, e.g. 1/3), dealt by run_id, each run with the "
    "stages it needs; merge the slices' databases with `ftbench merge`"
)
ONLY_HELP = (
    "only these grid cells (their stages come along): KEY=VALUE[|VALUE...][,...] with KEY one "
    "of method, model, dataset, seed; e.g. --only method=lora|qlora,seed=0"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftbench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ftbench {_version()}")
    parser.add_argument(
        "--results", default=os.environ.get("FTBENCH_RESULTS") or "results",
        help="results folder (default: $FTBENCH_RESULTS, else results)",
    )  # fmt: skip
    parser.add_argument(
        "--db", default=os.environ.get("FTBENCH_DB") or None,
        help="DuckDB file (default: $FTBENCH_DB, else RESULTS/ftbench.duckdb)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check suite files; nothing runs")
    p.add_argument("suites", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "ls", help="list methods, tasks, data sources, model assets (or a suite's runs)"
    )
    p.add_argument("suite", nargs="?")
    p.add_argument("--only", help=ONLY_HELP)
    p.add_argument("--shard", help=SHARD_HELP)
    _set_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("run", help="run a suite (finished runs are skipped)")
    p.add_argument("suite", help="suites/NAME.yaml, a suite name, or a lock file")
    p.add_argument("--only", help=ONLY_HELP)
    p.add_argument("--shard", help=SHARD_HELP)
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    _set_flag(p)
    _report_to_flag(p)
    _executor_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plan", help="predict each run's peak GPU memory against the budget")
    p.add_argument("suite", help="suites/NAME.yaml, a suite name, or a lock file")
    p.add_argument("--only", help=ONLY_HELP)
    p.add_argument("--shard", help=SHARD_HELP)
    p.add_argument("--format", choices=["text", "json"], default="text")
    _set_flag(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("memcheck", help="predicted vs measured memory of the runs in DuckDB")
    p.add_argument("--suite", help="only this suite")
    p.set_defaults(func=cmd_memcheck)

    p = sub.add_parser("tune", help="Optuna search per cell, then re-run the best on every seed")
    p.add_argument("suite", help="suites/NAME.yaml or a suite name (needs a tune: block)")
    p.add_argument("--only", help=ONLY_HELP)
    _set_flag(p)
    p.add_argument(
        "--pruner", choices=["median", "hyperband", "threshold", "none"], help="override"
    )
    p.add_argument("--no-final", action="store_true", help="trials only, no tuned re-runs")
    _report_to_flag(p)
    p.add_argument(
        "--storage",
        help="Optuna storage URL for the studies (e.g. sqlite:///studies.db, an RDB every node "
        "reaches); default: a journal file per cell under RESULTS/optuna/",
    )
    _executor_flags(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("show", help="print a suite's leaderboard from DuckDB")
    p.add_argument("suite", help="a suite file or name (its `name:` is what results are under)")
    p.add_argument(
        "--format", choices=["text", "markdown", "json", "csv"], default="text",
        help="text: the leaderboard and every section; markdown/json/csv: the leaderboard table",
    )  # fmt: skip
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("lock", help="pin a suite's planned runs, model hashes, data fingerprints")
    p.add_argument("suite", help="suites/NAME.yaml or a suite name")
    p.add_argument("-o", "--out", help="lock file (default: next to the suite, NAME.lock.json)")
    _set_flag(p)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("repro", help="re-run finished runs from their stored spec and compare")
    p.add_argument("run_id", nargs="?", help="a run_id (see `ftbench ls SUITE`)")
    p.add_argument("--suite", help="check runs of this suite (its ok runs in the database)")
    p.add_argument("--sample", type=int, help="check a seeded sample of N runs (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.set_defaults(func=cmd_repro)

    p = sub.add_parser(
        "merge", help="combine result databases (e.g. of --shard slices) into one, by run_id"
    )
    p.add_argument("sources", nargs="+", help="DuckDB files to merge, in order (first wins)")
    p.add_argument("--into", required=True, help="the merged DuckDB file (created if missing)")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("dashboard", help="serve the Streamlit leaderboard over the results DB")
    p.add_argument(
        "--address", default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes "
        "it, without a login, to the network)",
    )  # fmt: skip
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("export", help="export runs and metrics (one row per run x metric)")
    p.add_argument("--suite")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out")
    p.add_argument(
        "--examples", action="store_true",
        help="also write <out>_examples: one row per run x example with its score",
    )  # fmt: skip
    p.set_defaults(func=cmd_export)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ftbench")
    except PackageNotFoundError:
        return "(not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    from harness.suite.extras import MissingExtraError

    args = build_parser().parse_args(argv)
    configure_offline_mode()  # before transformers is imported anywhere
    from harness.store import DatabaseError, SchemaMismatchError

    try:
        return args.func(args)
    except MissingExtraError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (OSError, DatabaseError, SchemaMismatchError) as exc:
        # The machine's fault, not the code's: one line saying what and where, no traceback.
        # Results already written stay (a re-run ingests them).
        print(f"ftbench: {environment_error(exc)}", file=sys.stderr)
        return 1


def environment_error(exc: BaseException) -> str:
    """One line for a failure of the machine around ftbench (disk, permissions, database)."""
    if not isinstance(exc, OSError):
        return str(exc).splitlines()[0]
    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device writing {where}: free some space, then run again"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {where} ({exc.strerror}): give a writable folder (--results, --db)"
    return f"{where}: {exc.strerror or exc}"


if __name__ == "__main__":
    sys.exit(main())
