"""Statistics over the seeds of one cell: mean ± std, bootstrap 95% CI, trimmed mean, validity.

One place for these numbers: store.cell_stats uses it, and through it `ftbench show` and the
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
