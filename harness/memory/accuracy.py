"""How far predictions are from measurements: the summary every memory comparison prints.

Shared by `benchmarks/memory_h100.py` (the H100 reference table), `make bench-memory-gpu`
(the harness's own GPU runs) and the calibration bands (harness/memory/calibration.py), so all
three state accuracy the same way: signed error (predicted - measured) / measured, its median
and 95th percentile of |error| (nearest rank), and whether the fit / no-fit verdict at a limit
agrees with what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    label: str
    family: str  # the method family the band is kept for (lora, qlora, full, ...)
    predicted: int  # bytes
    measured: int  # bytes
    exact: int = 0  # bytes of the prediction known exactly (weights, optimizer state)

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty collection: a value that occurred."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(pairs: list[Pair], limit_bytes: int | None = None) -> dict[str, float | int]:
    """Median / p95 / max of |error| (%), the worst under-prediction (%), and, with a limit,
    how many fit verdicts (predicted <= limit vs measured <= limit) were right."""
    if not pairs:
        raise ValueError("no predicted/measured pairs to summarize")
    errors = [abs(p.error) for p in pairs]
    out: dict[str, float | int] = {
        "n": len(pairs),
        "median_abs_pct": 100 * percentile(errors, 50),
        "p95_abs_pct": 100 * percentile(errors, 95),
        "max_abs_pct": 100 * max(errors),
        "worst_under_pct": 100 * min(0.0, min(p.error for p in pairs)),
    }
    if limit_bytes is not None:
        right = sum((p.predicted <= limit_bytes) == (p.measured <= limit_bytes) for p in pairs)
        out["verdicts_right"] = right
    return out


def format_summary(summary: dict[str, float | int], limit_gb: float | None = None) -> str:
    text = (
        f"{summary['n']} runs: median |error| {summary['median_abs_pct']:.1f} %, "
        f"p95 {summary['p95_abs_pct']:.1f} %, max {summary['max_abs_pct']:.1f} %, "
        f"worst under-prediction {summary['worst_under_pct']:.1f} %"
    )
    if "verdicts_right" in summary:
        text += f"; fit/no-fit at {limit_gb:g} GB right on {summary['verdicts_right']} of {summary['n']}"
    return text
