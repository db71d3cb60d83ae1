"""`ftbench repro`: re-run a finished run from its stored resolved spec and compare.

The re-run goes through the normal executor into results/repro/<run_id>/<timestamp>/ and is not a
leaderboard run. Every metric and the loss curve are compared with the original: exactly when the
run is strict and both ran on CPU (that must be bit-identical), else within the spec's
determinism.rel_tol / abs_tol. Inputs that differ (model file hash, dataset fingerprint, config
hash, seed) fail the check; environment differences (commit, packages, device) are reported with
it, since they usually explain a metric that moved. Every check is stored in DuckDB (repro_checks).
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import store
from harness.store import browse
from harness.store.result import RESULT_FILE, RunResult, now, read_result, write_atomic
from harness.suite.spec import RunSpec

# A difference in one of these means the re-run did not compute the same experiment.
INPUT_FIELDS = (
    "model_id", "model_revision", "model_file_sha256", "dataset_fingerprint", "seed", "config_hash",
)  # fmt: skip
ENV_FIELDS = ("git_commit", "git_dirty", "python", "device", "cuda", "compute_capability")
REPRO_FILE = "repro.json"


class ReproError(RuntimeError):
    """A repro cannot start (no such run, no stored spec); the message says what to do."""


def find_original(
    run_id: str, results_dir: Path, db_path: Path | None = None
) -> tuple[RunResult, Path]:
    """The original result.json and its run folder: results/runs/<id>/, else the DB's result_path."""
    run_dir = results_dir / "runs" / run_id
    result = read_result(run_dir)
    if result is None and db_path is not None and db_path.exists():
        stored = browse.result_path(db_path, run_id)
        if stored is not None:
            run_dir = stored.parent
            result = read_result(run_dir)
    if result is None:
        raise ReproError(
            f"no result.json for run {run_id!r} under {results_dir / 'runs'} (or in {db_path}): "
            "run its suite first (`ftbench ls SUITE` lists run_ids)"
        )
    return result, run_dir


def stored_spec(result: RunResult, run_dir: Path) -> RunSpec:
    """The resolved spec the original ran with: spec.json, else result.json run_info.spec."""
    spec_path = run_dir / "spec.json"
    data = json.loads(spec_path.read_text()) if spec_path.is_file() else result.spec
    if not data:
        raise ReproError(f"{run_dir}: neither spec.json nor result.json run_info.spec is there")
    return RunSpec.model_validate(data)


def tolerance(spec: RunSpec, original_meta: dict[str, Any], repro_meta: dict[str, Any]) -> dict:
    settings = spec.determinism_settings
    on_cpu = all(str(m.get("device") or "").startswith("cpu") for m in (original_meta, repro_meta))
    if settings.strict and on_cpu:
        return {"mode": "exact", "rel_tol": 0.0, "abs_tol": 0.0}
    return {"mode": "relative", "rel_tol": settings.rel_tol, "abs_tol": settings.abs_tol}


def _same(a: float, b: float, tol: dict[str, Any]) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if tol["mode"] == "exact":
        return a == b
    return math.isclose(a, b, rel_tol=tol["rel_tol"], abs_tol=tol["abs_tol"])


def _metric_delta(a: float, b: float, tol: dict[str, Any]) -> dict[str, Any]:
    delta = b - a
    rel = abs(delta) / abs(a) if a else (0.0 if delta == 0 else None)  # None: from exactly 0
    return {"original": a, "repro": b, "delta": delta, "rel_delta": rel, "ok": _same(a, b, tol)}


def _flatten(meta: dict[str, Any]) -> dict[str, Any]:
    flat = {k: meta.get(k) for k in ENV_FIELDS}
    flat.update({f"packages.{k}": v for k, v in (meta.get("packages") or {}).items()})
    flat.update({f"determinism.{k}": v for k, v in (meta.get("determinism") or {}).items()})
    return flat


def compare(original: dict[str, Any], repro: dict[str, Any], tol: dict[str, Any]) -> dict[str, Any]:
    """Compare two result.json dicts: verdict, failures (readable), metric deltas, env differences."""
    failures: list[str] = []
    a_info, b_info = original["train_info"], repro["train_info"]
    a_meta, b_meta = original.get("meta_info") or {}, repro.get("meta_info") or {}
    if a_info["status"] != b_info["status"]:
        failures.append(
            f"status: {a_info['status']} -> {b_info['status']}"
            + (f" ({b_info.get('reason')})" if b_info.get("reason") else "")
        )
    for field in INPUT_FIELDS:
        if a_meta.get(field) != b_meta.get(field):
            failures.append(
                f"input changed: {field} {a_meta.get(field)!r} -> {b_meta.get(field)!r}"
            )

    deltas: dict[str, Any] = {}
    a_metrics = {
        f"{split}/{name}": v
        for split, values in (a_info.get("metrics") or {}).items()
        for name, v in values.items()
    }
    b_metrics = {
        f"{split}/{name}": v
        for split, values in (b_info.get("metrics") or {}).items()
        for name, v in values.items()
    }
    for name in sorted(a_metrics.keys() | b_metrics.keys()):
        if name not in a_metrics or name not in b_metrics:
            where = "repro" if name not in b_metrics else "original"
            failures.append(f"{name}: missing in the {where}")
            continue
        d = deltas[name] = _metric_delta(a_metrics[name], b_metrics[name], tol)
        if not d["ok"]:
            failures.append(
                f"{name}: {d['original']!r} -> {d['repro']!r} (delta {d['delta']:+.6g}"
                + (f", rel {d['rel_delta']:.3%}" if d["rel_delta"] is not None else "")
                + f"; allowed: {_allowed(tol)})"
            )

    # The loss curve: every logged value in exact mode, the loss otherwise (grad norms are noisy).
    a_curve, b_curve = a_info.get("curve") or [], b_info.get("curve") or []
    keys = (
        sorted({k for p in a_curve for k in p} - {"step"}) if tol["mode"] == "exact" else ["loss"]
    )
    if [p["step"] for p in a_curve] != [p["step"] for p in b_curve]:
        failures.append(f"curve: logged steps differ ({len(a_curve)} vs {len(b_curve)} points)")
    else:
        for key in keys:
            pairs = [
                (p["step"], p.get(key), q.get(key)) for p, q in zip(a_curve, b_curve, strict=True)
            ]
            pairs = [(s, x, y) for s, x, y in pairs if x is not None or y is not None]
            if not pairs:
                continue
            bad = [(s, x, y) for s, x, y in pairs if x is None or y is None or not _same(x, y, tol)]
            gaps = [abs(y - x) for _, x, y in pairs if x is not None and y is not None]
            gaps = [g for g in gaps if not math.isnan(g)]
            deltas[f"curve/{key}"] = {
                "points": len(pairs),
                "differing": len(bad),
                "max_abs_delta": max(gaps, default=0.0),
                "first_differing_step": bad[0][0] if bad else None,
                "ok": not bad,
            }
            if bad:
                step, x, y = bad[0]
                failures.append(
                    f"curve/{key}: {len(bad)} of {len(pairs)} points differ, first at step {step} "
                    f"({x!r} -> {y!r}); max |delta| {max(gaps, default=0.0):.6g}"
                )

    a_env, b_env = _flatten(a_meta), _flatten(b_meta)
    env = {
        k: {"original": a_env.get(k), "repro": b_env.get(k)}
        for k in sorted(a_env.keys() | b_env.keys())
        if a_env.get(k) != b_env.get(k)
    }
    return {
        "verdict": "fail" if failures else "pass",
        "tolerance": tol,
        "failures": failures,
        "metric_deltas": deltas,
        "env_differences": env,
        "original_status": a_info["status"],
        "repro_status": b_info["status"],
    }


def _allowed(tol: dict[str, Any]) -> str:
    if tol["mode"] == "exact":
        return "exact (strict mode on CPU)"
    return f"rel_tol {tol['rel_tol']:g}, abs_tol {tol['abs_tol']:g}"


def _repro_dir(results_dir: Path, run_id: str) -> Path:
    base = results_dir / "repro" / run_id
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target, n = base / stamp, 1
    while target.exists():
        n += 1
        target = base / f"{stamp}-{n}"
    return target


def reproduce(
    run_id: str,
    results_dir: Path,
    db_path: Path,
    executor: Any = None,
) -> dict[str, Any]:
    """Re-run `run_id` from its stored spec, compare, store the check; returns the check."""
    from harness.plan.plan import stored_run
    from harness.run.runner import LocalSubprocessExecutor, run_progress

    original, run_dir = find_original(run_id, results_dir, db_path)
    spec = stored_spec(original, run_dir)
    if spec.trial is not None:  # its re-run would report into the live Optuna study
        raise ReproError(
            f"run {run_id} is tuning trial {spec.trial.number} of {spec.trial.study_name}: repro "
            "checks leaderboard runs (suite runs and tuned re-runs), not trials"
        )
    planned = stored_run(spec)
    if planned.preset:  # the same verdicts a suite run would take
        status, reason = planned.preset
        raise ReproError(f"run {run_id} cannot be re-run here ({status}): {reason}")
    target = _repro_dir(results_dir, run_id)
    executor = executor or LocalSubprocessExecutor()
    with run_progress(f"repro {spec.label}") as progress:
        repro = executor.run(spec, target, on_progress=progress)
    write_atomic(target / RESULT_FILE, repro)
    tol = tolerance(spec, original.meta_info, repro.meta_info)
    check = {
        "original_run_id": run_id,
        "label": spec.label,
        "suite": spec.suite,
        "original_dir": str(run_dir),
        "repro_dir": str(target),
        "checked_at": now(),
        **compare(original.to_json(), repro.to_json(), tol),
    }
    write_atomic(target / REPRO_FILE, check)
    store.record_repro(db_path, check)
    return check


def sample_run_ids(db_path: Path, suite: str, n: int | None, seed: int = 0) -> list[str]:
    """Finished (ok) leaderboard runs of a suite; a seeded sample of n of them when n is given."""
    if n is not None and n < 1:
        raise ReproError(f"--sample {n}: give a number of runs of at least 1")
    if not db_path.exists():
        raise ReproError(f"no results database at {db_path}: run the suite first")
    ids = browse.ok_run_ids(db_path, suite)
    if not ids:
        raise ReproError(f"suite {suite!r} has no finished (ok) runs in {db_path}: run it first")
    if n is None or n >= len(ids):
        return ids
    return sorted(random.Random(seed).sample(ids, n))


def format_check(check: dict[str, Any]) -> str:
    tol = check["tolerance"]
    head = (
        f"{check['verdict'].upper()} {check['original_run_id']} {check.get('label', '')} "
        f"[tolerance: {_allowed(tol)}]"
    )
    lines = [head]
    if check["verdict"] == "pass":
        n = sum(1 for k in check["metric_deltas"] if not k.startswith("curve/"))
        curve = check["metric_deltas"].get("curve/loss")
        points = f", loss curve ({curve['points']} points)" if curve else ""
        lines.append(f"  {n} metrics{points} match")
    lines += [f"  - {f}" for f in check["failures"]]
    if check["env_differences"]:
        lines.append("  environment differences:")
        lines += [
            f"    {k}: {v['original']!r} -> {v['repro']!r}"
            for k, v in check["env_differences"].items()
        ]
    lines.append(f"  repro run: {check['repro_dir']}")
    return "\n".join(lines)
