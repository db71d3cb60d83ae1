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

Gradient checkpointing is a factor of its own (it changes which activations live at the peak):
a band keyed `FAMILY+checkpointing` applies to checkpointed runs of that family and falls back to
the family's band, then `default`. `widen_bands` (used by `make gpu-check`) widens a file's bands
from the harness's own measured runs when they cover fewer than 95 % of them, never narrowing one.
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


CHECKPOINTING = "+checkpointing"
COVERAGE_TARGET = 0.95  # below this share of measured peaks inside their bands, bands are widened


def band_key(family: str, checkpointing: bool = False) -> str:
    """The calibration key of a method family (a method's registered name), with or without
    gradient checkpointing."""
    return family + CHECKPOINTING if checkpointing else family


def lookup(bands: dict[str, Band], key: str) -> Band:
    """A key's band: its own, else (for a checkpointed key) its family's, else the default."""
    if key in bands:
        return bands[key]
    family = key.removesuffix(CHECKPOINTING)
    return bands.get(family, bands["default"])


def band_for(family: str, path: Path | None = None, checkpointing: bool = False) -> Band:
    """The band of a method family (checkpointed or not), or the default band."""
    return lookup(_cached(str(path or calibration_path())), band_key(family, checkpointing))


def covered(bands: dict[str, Band], pair: Pair) -> bool:
    """Whether a measured peak lies inside the band of its pair's key (Pair.family)."""
    low, high = lookup(bands, pair.family).bounds(pair.predicted, pair.exact)
    return low <= pair.measured <= high


def coverage(bands: dict[str, Band], pairs: Iterable[Pair]) -> float:
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no measured rows to check the bands on")
    return sum(covered(bands, p) for p in pairs) / len(pairs)


def widen_bands(
    bands: dict[str, Band], pairs: Iterable[Pair], source: str
) -> tuple[dict[str, Band], dict[str, Any]]:
    """Bands that cover the harness's own measured rows, never narrower than `bands`.

    Each pair's `family` is its key (`band_key`: family, `+checkpointing` when it ran
    checkpointed). When the current bands cover at least COVERAGE_TARGET of the rows they are
    returned unchanged. Otherwise every key with a row outside its band gets the band it had
    (by `lookup`: a checkpointed key starts from its family's) widened to its rows' extreme
    ratios, and `default` widened to the pooled p95 on each side, so each
    row is inside its band afterwards. Keys without rows keep their bands. Returns the bands and
    a summary: coverage before and after, and which keys changed."""
    pairs = list(pairs)
    before = coverage(bands, pairs)
    summary: dict[str, Any] = {"rows": len(pairs), "coverage_before": before, "widened": {}}
    if before >= COVERAGE_TARGET:
        return dict(bands), {**summary, "coverage_after": before}
    out = dict(bands)
    ratios = [ratio(p) for p in pairs]
    old = bands["default"]
    out["default"] = Band(
        min(old.lower, -percentile([max(-r, 0.0) for r in ratios], 95)),
        max(old.upper, percentile([max(r, 0.0) for r in ratios], 95)),
        old.rows,
        f"{source}; widened from: {old.source}",
    )
    if (out["default"].lower, out["default"].upper) != (old.lower, old.upper):
        summary["widened"]["default"] = {"was": [old.lower, old.upper],
                                         "now": [out["default"].lower, out["default"].upper]}  # fmt: skip
    for key in sorted({p.family for p in pairs}):
        mine = [ratio(p) for p in pairs if p.family == key]
        was = lookup(bands, key)
        lower, upper = min(was.lower, min(mine)), max(was.upper, max(mine))
        if (lower, upper) == (was.lower, was.upper):
            continue  # its rows were inside: the band (or the one it falls back to) stays
        rows = len(mine) + (bands[key].rows if key in bands else 0)
        out[key] = Band(lower, upper, rows, f"{source}; widened from: {was.source}")
        summary["widened"][key] = {"was": [was.lower, was.upper], "now": [lower, upper]}
    return out, {**summary, "coverage_after": coverage(out, pairs)}


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
