"""Writing the store: a finished run (one transaction), a suite, tuning studies, repro checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.store.queries import SYSTEMS_ONLY_SPLIT
from harness.store.result import Memory, ParamCounts, RunResult, Timings
from harness.store.schema import RUN_TABLES, connect, declare_table, declared_tables


def record_suite(db_path: Path | str, suite: Any, path: Path | str) -> None:
    with connect(db_path) as con:
        con.execute(
            "INSERT OR REPLACE INTO suites VALUES (?, ?, ?, ?, ?, now())",
            [suite.name, suite.version, suite.description, str(path), suite.model_dump_json()],
        )


def ingest(
    db_path: Path | str, result: RunResult | dict[str, Any], result_path: Path | str | None = None
) -> None:
    """Insert one run (replacing any earlier rows of the same run_id) in a single transaction."""
    from harness.suite.tasks import TASKS, higher_is_better

    if not isinstance(result, RunResult):
        result = RunResult.model_validate(result)
    spec, info, meta, run_id = result.spec, result.train_info, result.meta_info, result.run_id
    timings, params = info.timings or Timings(), info.params or ParamCounts()
    memory, fast = info.memory or Memory(), info.speed or {}
    task = spec["dataset"]["task"]
    headline = spec["dataset"].get("metric") or (
        TASKS.get(task).primary_metric if task in TASKS else None
    )
    run = {
        "run_id": run_id, "suite": spec["suite"], "suite_version": spec["suite_version"],
        "method_key": spec["method_key"], "method": spec["method"],
        "model_key": spec["model_key"], "dataset_key": spec["dataset_key"], "task": task,
        "seed": spec["seed"], "status": info.status, "reason": info.reason,
        "traceback": info.traceback, "headline_metric": headline, "config": json.dumps(spec),
        "started_at": result.run_info.started_at, "finished_at": result.run_info.finished_at,
        "load_s": timings.load_s, "train_s": timings.train_s, "eval_s": timings.eval_s,
        "total_s": timings.total_s, "trainable_params": params.trainable_params,
        "total_params": params.total_params, "trainable_pct": params.trainable_pct,
        "peak_mem_bytes": memory.peak_mem_bytes, "peak_mem_kind": memory.peak_mem_kind,
        "cuda_max_allocated": memory.cuda_max_allocated,
        "cuda_max_reserved": memory.cuda_max_reserved, "train_tokens": info.train_tokens,
        "tokens_per_s": info.tokens_per_s, "artifact_bytes": info.artifact_bytes,
        "precision_effective": info.precision_effective, "notes": json.dumps(info.notes or {}),
        "result_path": str(result_path) if result_path else None, "origin": _origin(spec),
        "tune_trials": (spec.get("tuned") or {}).get("trials"),
        "steady_tokens_per_s": fast.get("steady_tokens_per_s"),
        "steady_samples_per_s": fast.get("steady_samples_per_s"),
        "first_step_s": fast.get("time_to_first_step_s"),
    }  # fmt: skip
    systems_only = ((spec.get("model") or {}).get("weights") or "pretrained") == "random"
    metric_rows = [
        [
            run_id,
            SYSTEMS_ONLY_SPLIT if systems_only else split,
            name,
            value,
            higher_is_better(task, name),
        ]  # fmt: skip
        for split, values in (info.metrics or {}).items()
        for name, value in values.items()
    ]
    estimate = memory.estimate or {}
    memory_row = [
        run_id, systems_only, memory.weights_dtype, memory.cuda_cap_bytes,
        ((estimate.get("cuda") or {}).get("parts") or {}).get("total"),
        ((estimate.get("cpu") or {}).get("parts") or {}).get("total"),
        json.dumps(estimate), json.dumps(memory.measured_state),
        json.dumps(spec.get("budget_adjustments")),
    ]  # fmt: skip
    curve_rows = [
        [run_id, name, point["step"], value]
        for point in info.curve or []
        for name, value in point.items()
        if name != "step"
    ]
    curve_rows += [[run_id, "step_s", i, s] for i, s in enumerate(fast.get("step_s") or [], 1)]
    link_rows = [[run_id, role, up] for role, up in (spec.get("upstream") or {}).items()]
    tables = info.tables or {}
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for name, table in tables.items():
                declare_table(con, name, table)
            for table in (*declared_tables(con), *RUN_TABLES):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            # by name: migrations add columns at the end, so their order is not fixed
            con.execute(
                f"INSERT INTO runs ({', '.join(run)}) VALUES ({', '.join('?' * len(run))})",
                list(run.values()),
            )
            _insert(con, "metrics", metric_rows)
            _insert_curves(con, curve_rows)
            _insert(con, "run_links", link_rows)
            if meta:
                _insert(con, "provenance", [_provenance_row(run_id, meta)])
            _insert(con, "memory", [memory_row])
            if info.data_checks:
                _insert(con, "data_checks", [_data_row(run_id, info.data_checks)])
            for name, table in tables.items():
                rows = [[run_id, *(row[c] for c in table.columns)] for row in table.rows]
                _insert(con, name, rows)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _insert(con: Any, table: str, rows: list[list[Any]]) -> None:
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _insert_curves(con: Any, rows: list[list[Any]]) -> None:
    """A run's curve points in one statement: row-by-row executemany took ~0.3 s for a 500-step
    run (most of the driver's ingest time per run, benchmarks/ray_overhead.py)."""
    if rows:
        import pandas as pd

        points = pd.DataFrame(rows, columns=["run_id", "name", "step", "value"]).astype(
            {"step": "int64", "value": "float64"}
        )
        con.register("curve_points", points)
        con.execute("INSERT INTO curves SELECT run_id, name, step, value FROM curve_points")
        con.unregister("curve_points")


def _provenance_row(run_id: str, meta: dict[str, Any]) -> list[Any]:
    return [
        run_id, meta.get("git_commit"), meta.get("git_dirty"), meta.get("python"),
        json.dumps(meta.get("packages")), meta.get("device"), meta.get("cuda"),
        meta.get("compute_capability"), meta.get("model_id"), meta.get("model_revision"),
        meta.get("model_source"), meta.get("model_file_sha256"), meta.get("dataset_fingerprint"),
        meta.get("seed"), meta.get("config_hash"), meta.get("model_revision_requested"),
    ]  # fmt: skip


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
        _insert(con, "trials", rows)
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
        _insert(con, "expected_best", [[*keys, metric, n, v] for n, v in enumerate(curve, 1)])
        con.execute("COMMIT")


def record_repro(db_path: Path | str, check: dict[str, Any]) -> None:
    """Store one repro check (see harness/run/repro.py)."""
    tol = check["tolerance"]
    row = [
        check["original_run_id"], check["repro_dir"], check.get("suite"), check["checked_at"],
        check["verdict"], tol["mode"], tol.get("rel_tol"), tol.get("abs_tol"),
        check.get("original_status"), check.get("repro_status"), json.dumps(check["failures"]),
        json.dumps(check["metric_deltas"]), json.dumps(check["env_differences"]),
    ]  # fmt: skip
    with connect(db_path) as con:
        con.execute(f"INSERT OR REPLACE INTO repro_checks VALUES ({', '.join('?' * 13)})", row)
