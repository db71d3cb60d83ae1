"""How good is the memory estimator? Predicted against measured, for the runs in DuckDB.

GPU runs: predicted peak vs CUDA max allocated, and whether the fit / no-fit verdict for the
16 GB T4 budget was right (an `oom` under the cap counts as "did not fit"). CPU runs: the terms
that are exact on any device - weights, gradients, optimizer state, measured after the first
optimizer step - against the estimator's fp32 CPU prediction; activations are a GPU question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.memory.accuracy import Pair, format_summary
from harness.memory.accuracy import summarize as summarize_pairs
from harness.store.browse import memory_records
from harness.suite.budget_profile import T4_USABLE_GB

T4_LIMIT_BYTES = int(T4_USABLE_GB * 1e9)
TARGET_ERROR = 0.10  # the estimator's target: within ±10% of the measured peak
STATE_TERMS = {  # measured state_bytes key -> estimate parts summed for it
    "weights": ("weights_frozen", "weights_trainable", "quant_constants"),
    "gradients": ("gradients",),
    "optimizer": ("optimizer",),
}


@dataclass
class Row:
    run_id: str
    label: str
    kind: str  # "gpu peak" or a CPU state term
    predicted: int
    measured: int | None
    verdict_ok: bool | None = None  # GPU rows only

    @property
    def error(self) -> float | None:
        if not self.measured:
            return None
        return (self.predicted - self.measured) / self.measured


def _parts(estimate: dict[str, Any], device: str) -> dict[str, int] | None:
    return (estimate.get(device) or {}).get("parts")


def collect(db_path: Path | str, suite: str | None = None) -> list[Row]:
    rows: list[Row] = []
    for record in memory_records(db_path, suite):
        run_id, status, allocated = record["run_id"], record["status"], record["cuda_max_allocated"]
        kind, estimate, state = (
            record["peak_mem_kind"],
            record["estimate"],
            record["measured_state"],
        )
        label = f"{record['suite']}·{record['method_key']}·{record['model_key']}"
        gpu = _parts(estimate, "cuda")
        if kind == "cuda_max_allocated" and gpu:
            measured_fits = status == "ok" and allocated <= T4_LIMIT_BYTES
            predicted_fits = gpu["total"] <= T4_LIMIT_BYTES
            rows.append(
                Row(run_id, label, "gpu peak", gpu["total"], allocated if status == "ok" else None,
                    predicted_fits == measured_fits)
            )  # fmt: skip
        cpu = _parts(estimate, "cpu")
        if cpu and state:
            measured = {
                "weights": state["weights_frozen"] + state["weights_trainable"],
                "gradients": state["gradients"],
                "optimizer": state["optimizer"],
            }
            for term, keys in STATE_TERMS.items():
                predicted = sum(cpu.get(k, 0) for k in keys)
                if predicted or measured[term]:
                    rows.append(Row(run_id, label, f"cpu {term}", predicted, measured[term]))
    return rows


def summarize(rows: list[Row]) -> dict[str, Any]:
    errors = [abs(r.error) for r in rows if r.error is not None]
    verdicts = [r.verdict_ok for r in rows if r.verdict_ok is not None]
    return {
        "compared": len(errors),
        "mean_abs_error_pct": 100 * sum(errors) / len(errors) if errors else None,
        "within_10pct": sum(e <= TARGET_ERROR for e in errors),
        "gpu_verdicts": len(verdicts),
        "gpu_verdicts_right": sum(verdicts),
    }


def format_rows(rows: list[Row]) -> str:
    header = (
        f"{'run':16s} {'what':15s} {'predicted MB':>13s} {'measured MB':>12s} {'error':>8s}  label"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        measured = f"{r.measured / 1e6:12.1f}" if r.measured is not None else f"{'(oom)':>12s}"
        error = f"{100 * r.error:+7.1f}%" if r.error is not None else f"{'-':>8s}"
        verdict = (
            "" if r.verdict_ok is None else (" verdict ok" if r.verdict_ok else " VERDICT WRONG")
        )
        lines.append(
            f"{r.run_id:16s} {r.kind:15s} {r.predicted / 1e6:13.1f} {measured} {error}  {r.label}{verdict}"
        )
    s = summarize(rows)
    if s["compared"]:
        lines.append(
            f"\n{s['compared']} comparisons: mean |error| {s['mean_abs_error_pct']:.2f}%, "
            f"{s['within_10pct']} within ±10%"
        )
    if s["gpu_verdicts"]:
        lines.append(
            f"T4 (15 GB) fit/no-fit verdicts right: {s['gpu_verdicts_right']} of {s['gpu_verdicts']}"
        )
        peaks = [
            Pair(r.label, r.label, r.predicted, r.measured)
            for r in rows
            if r.kind == "gpu peak" and r.measured
        ]
        if peaks:  # the accuracy bounds of the memory issue: median / p95 |error|, worst under
            lines.append("GPU peaks: " + format_summary(summarize_pairs(peaks)))
    else:
        lines.append(
            "no GPU runs in this database: peaks incl. activations need a CUDA machine "
            "(CPU rows check weights, gradients and optimizer state only)"
        )
    return "\n".join(lines)


def frame(db_path: Path | str, suite: str | None = None):
    """collect() as a table (MB, error in %): what the dashboard's Memory page shows."""
    import pandas as pd

    columns = ["run_id", "run", "method", "what", "predicted_mb", "measured_mb", "error_pct",
               "t4_verdict_right"]  # fmt: skip
    return pd.DataFrame(
        [
            {
                "run_id": r.run_id,
                "run": r.label,
                "method": r.label.split("·")[1] if r.label.count("·") >= 2 else r.label,
                "what": r.kind,
                "predicted_mb": r.predicted / 1e6,
                "measured_mb": None if r.measured is None else r.measured / 1e6,
                "error_pct": None if r.error is None else 100 * r.error,
                "t4_verdict_right": r.verdict_ok,
            }
            for r in collect(db_path, suite)
        ],
        columns=columns,
    )
