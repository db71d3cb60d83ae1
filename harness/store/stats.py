"""The leaderboard's statistics: intervals, paired tests against the leader, ranks across cells.

One implementation, used by the store's leaderboard and through it by `ftbench show` and the
dashboard (they only format what it returns). The choices, and why:

- Over seeds: a Student t interval of the mean (n - 1 degrees of freedom). A percentile bootstrap
  of 3 values is about the range of the values and covered the true mean 78 % of the time at
  n = 3 (issue 26); t keeps its 95 % when the seed means are roughly normal.
- One run over its test examples: Wilson's interval for a proportion (accuracy: correct or not;
  it stays inside [0, 1] and holds its coverage near 0 and 1), a t interval for a mean of
  continuous per-example scores. This is test-set sampling uncertainty only: it says nothing
  about another seed.
- Against the leader, paired (every entry of a cell is scored on the same examples with the same
  seeds): a paired t test on the per-seed differences when 2+ seeds pair; with one seed, McNemar's
  exact test on the per-example correctness (binary) or a paired bootstrap of the per-example
  differences (continuous). Holm's step-down correction over the rows of one ranking, and the
  verdict `ahead` / `tied` / `behind` follows the corrected p-value.
- Across datasets and models: average ranks, the Friedman test and the Nemenyi critical
  difference (Demšar 2006, JMLR 7:1-30).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
MIN_CI_SEEDS = 3  # bootstrap_ci: below this it is just the spread of one or two values
MIN_TRIMMED_SEEDS = 5  # MLPerf-style: drop the best and the worst seed
MAX_DIVERGED = 1  # a cell with more diverged seeds than this is invalid
SEED_METHOD = "t (n-1 df) over seeds"


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


# --- intervals -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """Student t quantile (scipy's, cached: a leaderboard asks for the same few many times)."""
    from scipy import stats

    return stats.t.ppf(q, df)


def t_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Student t interval of the mean; None with fewer than 2 values (no spread to scale)."""
    array = _finite(values)
    n = len(array)
    if n < 2:
        return None
    se = array.std(ddof=1) / math.sqrt(n)
    half = _t_quantile(0.5 + confidence / 2, n - 1) * se
    mean = float(array.mean())
    return mean - half, mean + half


def t_intervals(n, mean, std, confidence: float = CONFIDENCE):
    """t_interval for many cells at once from their n, mean and sample std (arrays); NaN where
    n < 2. The leaderboard's vectorised path: the same numbers as t_interval."""
    from scipy import stats

    n, mean, std = (np.asarray(x, dtype=float) for x in (n, mean, std))
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, np.where(n >= 2, n - 1, np.nan)) * std / np.sqrt(n)
    return mean - half, mean + half


def wilson(successes: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; None with no trials."""
    from scipy import stats

    if n <= 0:
        return None
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def is_binary(values: np.ndarray) -> bool:
    return bool(len(values)) and bool(np.isin(values, (0.0, 1.0)).all())


@dataclass(frozen=True)
class Interval:
    mean: float
    se: float
    low: float
    high: float
    method: str
    n: int


def example_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval | None:
    """One run's mean over its test examples with its standard error and interval: Wilson for
    0/1 scores, t for continuous ones; None without examples."""
    array = _finite(values)
    n = len(array)
    if n == 0:
        return None
    mean = float(array.mean())
    se = float(array.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    if is_binary(array):
        low, high = wilson(array.sum(), n, confidence)
        return Interval(mean, math.sqrt(mean * (1 - mean) / n), low, high, "Wilson", n)
    ci = t_interval(array, confidence)
    low, high = ci if ci else (math.nan, math.nan)
    return Interval(mean, se, low, high, "t", n)


def trimmed_mean(values: Sequence[float]) -> float | None:
    """Mean without the single best and worst value; None with fewer than MIN_TRIMMED_SEEDS."""
    array = np.sort(_finite(values))
    if len(array) < MIN_TRIMMED_SEEDS:
        return None
    return float(array[1:-1].mean())


def summarize(values: Sequence[float], diverged: int = 0) -> dict[str, Any]:
    """n, mean, std (sample), the seed interval ci_low/ci_high (t, 2+ seeds), trimmed_mean,
    diverged and valid for one metric over the seeds of one cell."""
    array = _finite(values)
    n = len(array)
    ci = t_interval(array)
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


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (fixed RNG); None with fewer than 3 values.
    Only for many values (examples): over 3-5 seeds it under-covers, use t_interval."""
    array = _finite(values)
    if len(array) < MIN_CI_SEEDS:
        return None
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, len(array), size=(n_resamples, len(array)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --- paired comparisons --------------------------------------------------------------------------
@dataclass(frozen=True)
class Paired:
    """A row against the leader: diff = row - leader (in the metric's units), its interval, the
    two-sided p-value and the test that gave it."""

    diff: float
    low: float
    high: float
    p: float
    test: str


def paired_t(row: Sequence[float], leader: Sequence[float]) -> Paired | None:
    """Paired t test on matched values (seed means of the same seeds); None below 2 pairs."""
    from scipy import stats

    a, b = np.asarray(row, dtype=float), np.asarray(leader, dtype=float)
    d = a - b
    n = len(d)
    if n < 2:
        return None
    ci = t_interval(d)
    # no spread (identical runs): t is undefined; an equal gap in every seed counts as certain
    sd = d.std(ddof=1)
    if sd == 0:
        p = float(d[0] == 0)
    else:  # scipy.stats.ttest_rel, without its per-call overhead (the leaderboard calls it a lot)
        p = float(2 * stats.t.sf(abs(d.mean() / (sd / math.sqrt(n))), n - 1))
    return Paired(float(d.mean()), ci[0], ci[1], p, f"paired t, {n} seeds")


def mcnemar(row: Sequence[float], leader: Sequence[float]) -> Paired:
    """McNemar's exact test on paired 0/1 outcomes (an exact binomial test on the discordant
    pairs); the interval of the difference in accuracy is Wald's for paired proportions."""
    from scipy import stats

    a, b = np.asarray(row, dtype=bool), np.asarray(leader, dtype=bool)
    n = len(a)
    only_row, only_leader = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_row + only_leader
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_row, discordant).pvalue)
    diff = (only_row - only_leader) / n
    se = math.sqrt(max(discordant / n - diff * diff, 0.0) / n)
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    return Paired(diff, diff - z * se, diff + z * se, p, f"McNemar exact, {n} examples")


def paired_bootstrap(
    row: Sequence[float],
    leader: Sequence[float],
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Paired:
    """Paired bootstrap of the mean per-example difference (resampling examples, fixed RNG);
    p: twice the smaller share of resampled means on either side of 0."""
    d = np.asarray(row, dtype=float) - np.asarray(leader, dtype=float)
    n = len(d)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    share = min((means <= 0).mean(), (means >= 0).mean())
    p = float(min(1.0, 2 * max(share, 1 / n_resamples)))
    if np.all(d == 0):
        p = 1.0
    return Paired(float(d.mean()), float(low), float(high), p, f"paired bootstrap, {n} examples")


def paired_examples(row: Sequence[float], leader: Sequence[float]) -> Paired:
    """The per-example test that fits: McNemar for 0/1 scores, else a paired bootstrap."""
    a, b = _finite(row), _finite(leader)
    if is_binary(a) and is_binary(b):
        return mcnemar(a, b)
    return paired_bootstrap(a, b)


def compare(
    row_seeds: dict[int, float],
    leader_seeds: dict[int, float],
    row_examples: dict[int, dict[str, float]] | None = None,
    leader_examples: dict[int, dict[str, float]] | None = None,
) -> Paired | None:
    """A leaderboard row against its leader, paired: on the seeds both ran (2+: paired t on the
    per-seed scores, which carries the seed-to-seed variation a reader cares about), else on the
    examples both scored in their one shared seed (McNemar / paired bootstrap: test-set
    uncertainty of these trained models only). None when nothing pairs."""
    common = sorted(set(row_seeds) & set(leader_seeds))
    if len(common) >= 2:
        return paired_t([row_seeds[s] for s in common], [leader_seeds[s] for s in common])
    shared = sorted(set(row_examples or {}) & set(leader_examples or {}))
    if len(common) == 1 and common[0] in shared:
        a, b = row_examples[common[0]], leader_examples[common[0]]
        ids = sorted(set(a) & set(b))
        if ids:
            return paired_examples([a[i] for i in ids], [b[i] for i in ids])
    return None


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over the given tests; NaN kept)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def verdict(diff: float, p_adjusted: float, higher_is_better: bool, alpha: float = ALPHA) -> str:
    """`tied` unless the corrected test rejects; then `ahead`/`behind` of the leader by the sign
    of the difference in the metric's direction."""
    if math.isnan(p_adjusted):
        return "no test"
    if p_adjusted >= alpha or diff == 0:
        return "tied"
    better = diff > 0 if higher_is_better else diff < 0
    return "ahead" if better else "behind"


# --- across datasets and models ------------------------------------------------------------------
@dataclass(frozen=True)
class RankTest:
    """Friedman test over blocks (dataset x model cells) of entries, with average ranks (1 =
    best) and the Nemenyi critical difference: two entries whose average ranks differ by less
    than `cd` are not distinguished at `alpha`."""

    entries: list[str]
    avg_rank: list[float]
    n_blocks: int
    statistic: float
    p: float
    cd: float


def friedman(scores: np.ndarray, entries: Sequence[str], higher_is_better: bool) -> RankTest | None:
    """scores: blocks x entries (no NaN). None with fewer than 2 blocks or 3 entries (the
    Friedman test needs k >= 3; with 2 use the paired test)."""
    from scipy import stats

    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    if n < 2 or k < 3:
        return None
    ranks = stats.rankdata(-scores if higher_is_better else scores, axis=1)  # ties share ranks
    avg = ranks.mean(axis=0)
    statistic, p = stats.friedmanchisquare(*scores.T)
    if not np.isfinite(p):  # every block ranks the same way with all ties
        statistic, p = 0.0, 1.0
    q = stats.studentized_range.ppf(1 - ALPHA, k, np.inf) / math.sqrt(2)
    cd = float(q * math.sqrt(k * (k + 1) / (6 * n)))
    return RankTest(list(entries), avg.tolist(), n, float(statistic), float(p), cd)
