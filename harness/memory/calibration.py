"""Uncertainty bands for memory estimates, per method family, from measured residuals.

Weights and optimizer state are exact (counted byte for byte; checked on CPU). The rest of an
estimate (activations, logits and loss, gradients at their peak, temporaries) is what GPU
kernels and the allocator make uncertain, so a band is relative to that part: measured peaks of
a family were found within exact + rest x (1 + lower) .. exact + rest x (1 + upper). Budget
verdicts use the upper bound (harness/memory/estimate.py `verdict`), so a run is predicted to
fit only when its upper bound does. A 7B model whose 13.6 GB of fp16 weights are exact is
then not charged a margin on them.

Bands come from a calibration file (JSON; `calibration.json` beside this module is shipped):
one band per method family with the rows it came from, and a `default` band for families it has
no rows for. A family's band is never narrower than the pooled band of every row (nearest-rank
p95 of the errors on each side), so a family with two rows does not get a band from two numbers.
`make bench-memory-gpu --write` rewrites the file from the harness's own GPU runs;
benchmarks/memory_h100.py --write-calibration from the H100 reference table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.memory.accuracy import Pair, percentile

SHIPPED = Path(__file__).with_name("calibration.json")
ENV = "FTBENCH_MEMORY_CALIBRATION"  # another calibration file (e.g. one a GPU run wrote)


@dataclass(frozen=True)
class Band:
    """Measured peaks were within exact + rest x (1 + lower) .. exact + rest x (1 + upper)."""

    lower: float  # <= 0
    upper: float  # >= 0
    rows: int  # measured rows of this family behind it (0: the default band)
    source: str

    def bounds(self, predicted: int, exact: int = 0) -> tuple[int, int]:
        rest = predicted - exact
        return exact + round(rest * (1 + self.lower)), exact + round(rest * (1 + self.upper))


def ratio(pair: Pair) -> float:
    """How much more (+) or less (-) than predicted was measured, relative to the part of the
    prediction that is not exact."""
    return (pair.measured - pair.exact) / (pair.predicted - pair.exact) - 1


def bands_from_pairs(pairs: Iterable[Pair], source: str) -> dict[str, Band]:
    """Per family: the range of its rows' measured/predicted - 1, widened to at least the pooled
    p95 on each side; `default` is the pooled band over all rows."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no measured rows to calibrate on")
    ratios = [ratio(p) for p in pairs]
    pooled_up = percentile([max(r, 0.0) for r in ratios], 95)
    pooled_down = percentile([max(-r, 0.0) for r in ratios], 95)
    bands = {"default": Band(-max(-min(ratios), pooled_down), max(max(ratios), pooled_up), 0,
                             source)}  # fmt: skip
    for family in sorted({p.family for p in pairs}):
        mine = [ratio(p) for p in pairs if p.family == family]
        bands[family] = Band(
            min(min(mine), -pooled_down), max(max(mine), pooled_up), len(mine), source
        )
    return bands


def write_bands(path: Path, bands: dict[str, Band]) -> None:
    doc = {name: {**asdict(b), "lower": round(b.lower, 4), "upper": round(b.upper, 4)}
           for name, b in bands.items()}  # fmt: skip
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def read_bands(path: Path) -> dict[str, Band]:
    try:
        doc = json.loads(path.read_text())
        bands = {name: Band(**fields) for name, fields in doc.items()}
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a memory calibration file ({exc}); rewrite it with "
            f"`make bench-memory-gpu write=1` or unset {ENV}"
        ) from None
    if "default" not in bands:
        raise ValueError(f"{path}: no `default` band; rewrite it (make bench-memory-gpu write=1)")
    return bands


def calibration_path() -> Path:
    return Path(os.environ.get(ENV) or SHIPPED)


def band_for(family: str, path: Path | None = None) -> Band:
    """The band of a method family (a method's registered name), or the default band."""
    bands = _cached(str(path or calibration_path()))
    return bands.get(family, bands["default"])


_BANDS: dict[str, dict[str, Band]] = {}


def _cached(path: str) -> dict[str, Band]:
    if path not in _BANDS:
        _BANDS[path] = read_bands(Path(path))
    return _BANDS[path]


def exact_bytes(parts: dict[str, int]) -> int:
    """The terms of an estimate that are exact: weights (4-bit constants included), optimizer."""
    keys = ("weights_frozen", "weights_trainable", "quant_constants", "optimizer")
    return sum(parts.get(k, 0) for k in keys)


def describe(band: Band) -> dict[str, Any]:
    return {"lower_pct": 100 * band.lower, "upper_pct": 100 * band.upper, "rows": band.rows,
            "source": band.source}  # fmt: skip
