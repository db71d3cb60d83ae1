"""Statistics over the seeds of one cell: mean ± std, bootstrap 95% CI, trimmed mean, validity.

One place for these numbers: the store's leaderboard uses it, and through it `ftbench show` and the
dashboard. The bootstrap uses a fixed RNG seed, so the same values always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
MIN_CI_SEEDS = 3  # below this a bootstrap interval is just the spread of one or two values
MIN_TRIMMED_SEEDS = 5  # MLPerf-style: drop the best and the worst seed
MAX_DIVERGED = 1  # a cell with more diverged seeds than this is invalid


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; None with fewer than MIN_CI_SEEDS values."""
    array = _finite(values)
    if len(array) < MIN_CI_SEEDS:
        return None
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, len(array), size=(n_resamples, len(array)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def trimmed_mean(values: Sequence[float]) -> float | None:
    """Mean without the single best and worst value; None with fewer than MIN_TRIMMED_SEEDS."""
    array = np.sort(_finite(values))
    if len(array) < MIN_TRIMMED_SEEDS:
        return None
    return float(array[1:-1].mean())


def summarize(values: Sequence[float], diverged: int = 0) -> dict[str, Any]:
    """n, mean, std (sample), ci_low/ci_high, trimmed_mean, diverged and valid for one metric."""
    array = _finite(values)
    n = len(array)
    ci = bootstrap_ci(array)
    return {
        "n": n,
        "mean": float(array.mean()) if n else math.nan,
        "std": float(array.std(ddof=1)) if n > 1 else math.nan,
        "ci_low": ci[0] if ci else math.nan,
        "ci_high": ci[1] if ci else math.nan,
        "trimmed_mean": trimmed_mean(array) if n >= MIN_TRIMMED_SEEDS else math.nan,
        "diverged": int(diverged),
        "valid": diverged <= MAX_DIVERGED,
    }


def mark_ties(
    means: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    higher_is_better: bool,
    valid: Sequence[bool] | None = None,
) -> list[str]:
    """Per row: 'leader' (the best mean among valid rows), 'tied' (its CI overlaps the leader's),
    '' (separated), 'no CI' (fewer than 3 seeds on one side), 'no data' or 'invalid'."""
    valid = list(valid) if valid is not None else [True] * len(means)
    m = np.asarray(means, dtype=float)
    usable = np.asarray(valid, dtype=bool) & ~np.isnan(m)
    lead = None
    if usable.any():
        scores = np.where(usable, m if higher_is_better else -m, -np.inf)
        lead = int(np.argmax(scores))
    out: list[str] = []
    for i, (mean, low, high) in enumerate(zip(means, ci_low, ci_high, strict=True)):
        if not valid[i]:
            out.append("invalid")
        elif lead is None or math.isnan(mean):
            out.append("no data")
        elif i == lead:
            out.append("leader")
        elif any(math.isnan(v) for v in (low, high, ci_low[lead], ci_high[lead])):
            out.append("no CI")
        elif low <= ci_high[lead] and ci_low[lead] <= high:
            out.append("tied")
        else:
            out.append("")
    return out
