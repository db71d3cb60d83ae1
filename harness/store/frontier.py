"""Reward-KL frontiers: how alignment methods compare over a sweep, not at one setting.

Rafailov et al. (2023, DPO, fig. 2) compare methods by the reward each reaches at a given
KL(policy || reference) over a sweep of their regularisation (DPO's beta, PPO's kl_coef); one
setting per method says little, as the winner can flip with the hyperparameters picked. Here:

- a *family* is the runs of one suite entry (a swept entry `dpo@beta=0.1` belongs to `dpo`,
  harness.suite.suite_file.sweep_family); a *setting* is one swept value; each run is one point
  (kl, score) where score is the judge's score or the win rate against the start policy;
- a family's *frontier* is its non-dominated points (lower KL, higher score); the start policy,
  when the suite runs it, is every family's anchor at KL 0 (the limit of infinite
  regularisation) so interpolation can start there;
- the *score at matched KL* k: each seed's frontier of the family (its runs of that seed, plus that
  seed's start run) linearly interpolated at k, then the mean over seeds, with a percentile
  bootstrap interval over seeds (harness.store.stats: 3+ seeds). Seeds are the unit: the runs of one
  seed share their proxy and judge. Levels lie where every compared family's frontier reaches in
  every seed (no extrapolation);
- *dominance* at k: the family with the highest mean leads; the difference to each other family is
  taken per seed (paired: same judge), with its bootstrap interval and the seeds it wins.

Pure functions on numbers (tested on constructed values): statistics over stored runs, like
harness/store/stats.py. Which runs are policies, and reading them, is the alignment backend's
(harness/backends/alignment/frontier.py); so is the text `ftbench show` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.store import stats
from harness.store.pareto import pareto_mask

if TYPE_CHECKING:  # imported where used: every CLI call imports the backends, few need these
    import numpy as np
    import pandas as pd

KL = "kl"
# What a frontier can plot against KL (higher is better), per judge: the trained judge (a reward
# model, the proxy's recipe) and the independent one (a lexicon or a pretrained classifier).
JUDGES = {
    "trained": ("judge_score", "win_rate"),
    "independent": ("indep_judge_score", "indep_win_rate"),
}
METRICS = tuple(m for pair in JUDGES.values() for m in pair)
ANCHOR_METHOD = "start"  # the starting policy: the KL-0 point every family can reach
LEVELS = 5  # matched-KL levels in `ftbench show`


# --------------------------------------------------------------------------- on numbers


def frontier_curve(kl: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """The frontier as a curve: its points by increasing KL (one per KL value)."""
    import numpy as np

    x, y = np.asarray(kl, dtype=float), np.asarray(score, dtype=float)
    keep = pareto_mask(x, y)
    xs, idx = np.unique(x[keep], return_index=True)
    return xs, y[keep][idx]


def interpolate(xs: np.ndarray, ys: np.ndarray, at: Any) -> np.ndarray:
    """Linear interpolation along a frontier curve; NaN outside its KL range (no extrapolation)."""
    import numpy as np

    at = np.atleast_1d(np.asarray(at, dtype=float))
    if len(xs) == 0:
        return np.full(len(at), math.nan)
    values = np.interp(at, xs, ys)
    return np.where((at >= xs[0]) & (at <= xs[-1]), values, math.nan)


def kl_levels(ranges: list[tuple[float, float]], n: int) -> np.ndarray:
    """n KL levels evenly spaced over the range every curve covers, its lower end left out (at an
    anchor every family scores the same); empty when the ranges do not overlap."""
    import numpy as np

    if not ranges:
        return np.array([])
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if not high > low:
        return np.array([])
    return np.linspace(low, high, n + 1)[1:]


def seed_curves(points: pd.DataFrame) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """family -> seed -> frontier curve, from rows (family, seed, kl, score); rows of the anchor
    family join every other family's curve of their seed."""
    import pandas as pd

    anchors = points[points["family"] == ANCHOR_METHOD]
    out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for (family, seed), rows in points[points["family"] != ANCHOR_METHOD].groupby(
        ["family", "seed"], sort=True
    ):
        rows = pd.concat([rows, anchors[anchors["seed"] == seed]])
        out.setdefault(str(family), {})[int(seed)] = frontier_curve(rows["kl"], rows["score"])
    return out


def comparable(curves: dict[str, dict[int, tuple]], seeds: list[int]) -> list[str]:
    """Families whose frontier spans a KL range (2+ points) in every seed."""
    return [
        family
        for family, by_seed in curves.items()
        if all(seed in by_seed and len(by_seed[seed][0]) >= 2 for seed in seeds)
    ]


def matched(
    curves: dict[str, dict[int, tuple]], seeds: list[int], levels: np.ndarray
) -> pd.DataFrame:
    """Per family and KL level: the mean over seeds of each seed's interpolated score, its
    bootstrap interval (3+ seeds) and the per-seed values."""
    import numpy as np
    import pandas as pd

    rows = []
    for family, by_seed in curves.items():
        per_seed = np.array([interpolate(*by_seed[s], levels) for s in seeds])  # seeds x levels
        for j, level in enumerate(levels):
            values = per_seed[:, j].tolist()
            ci = stats.bootstrap_ci(values)
            rows.append({
                "family": family, "kl": float(level), "mean": float(np.mean(values)),
                "ci_low": ci[0] if ci else math.nan, "ci_high": ci[1] if ci else math.nan,
                "n": len(values), "per_seed": values,
            })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["family", "kl", "mean", "ci_low", "ci_high", "n", "per_seed"]
    )


def dominance(at: pd.DataFrame) -> pd.DataFrame:
    """Per KL level: the leading family (highest mean) against each other one: the paired
    difference per seed, its mean and bootstrap interval, the seeds the leader wins and a verdict
    (`ahead`: the interval is above 0; `tied`: it contains 0; `no CI`: fewer than 3 seeds)."""
    import numpy as np
    import pandas as pd

    rows = []
    for level, group in at.groupby("kl", sort=True):
        group = group.sort_values("mean", ascending=False, kind="stable")
        lead = group.iloc[0]
        for other in group.iloc[1:].itertuples():
            diffs = np.subtract(lead["per_seed"], other.per_seed)
            ci = stats.bootstrap_ci(diffs.tolist())
            verdict = "no CI" if ci is None else "ahead" if ci[0] > 0 else "tied"
            rows.append({
                "kl": float(level), "leader": lead["family"], "other": other.family,
                "difference": float(diffs.mean()), "ci_low": ci[0] if ci else math.nan,
                "ci_high": ci[1] if ci else math.nan,
                "seeds_won": int((diffs > 0).sum()), "seeds": len(diffs), "verdict": verdict,
            })  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["kl", "leader", "other", "difference", "ci_low", "ci_high", "seeds_won",
                 "seeds", "verdict"],
    )  # fmt: skip


def settings(points: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per family and setting (by increasing KL): mean KL and metrics over its ok seeds, seeds,
    and whether the mean point is on its family's frontier (the anchor's mean point included)."""
    agg = {KL: (KL, "mean"), **{m: (m, "mean") for m in metrics}, "n": ("seed", "nunique")}
    table = points.groupby(["family", "setting"], sort=True).agg(**agg).reset_index()
    table = table.sort_values(["family", KL], kind="stable", ignore_index=True)
    anchor = table[table["family"] == ANCHOR_METHOD]
    table["on_frontier"] = table["family"] == ANCHOR_METHOD
    for _, rows in table[table["family"] != ANCHOR_METHOD].groupby("family"):
        both = [*rows[KL], *anchor[KL]], [*rows[metrics[0]], *anchor[metrics[0]]]
        table.loc[rows.index, "on_frontier"] = pareto_mask(*both)[: len(rows)]
    return table


@dataclass
class Frontier:
    """The frontier summary of one dataset and model of a suite, for one metric."""

    dataset: str
    model: str
    metric: str
    runs: pd.DataFrame  # every policy run: family, setting, seed, status, reason, kl, metrics
    settings: pd.DataFrame  # per family and setting (mean over ok seeds), frontier flag
    matched: pd.DataFrame  # per family and KL level
    dominance: pd.DataFrame  # per KL level and non-leading family
    seeds: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> pd.DataFrame:
        return usable(self.runs, self.metric)


def usable(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    return runs[(runs["status"] == "ok") & runs[KL].notna() & runs[metric].notna()]


def summarize(
    runs: pd.DataFrame, metric: str = "judge_score", levels: int = LEVELS
) -> list[Frontier]:
    """One Frontier per dataset and model of a policy_runs frame."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: a frontier plots one of {', '.join(METRICS)}")
    out = []
    for (dataset, model), group in runs.groupby(["dataset", "model"], sort=True):
        out.append(_frontier(str(dataset), str(model), group, metric, levels))
    return out


def _frontier(dataset: str, model: str, runs: pd.DataFrame, metric: str, n: int) -> Frontier:

    notes = []
    ok = usable(runs, metric)
    seeds = sorted(int(s) for s in ok["seed"].unique())
    judges = ok.groupby("seed")["judge_run"].nunique()
    for seed in judges[judges > 1].index:
        notes.append(f"seed {seed}: runs were scored by different judges, so not comparable")
    points = ok.assign(score=ok[metric])[["family", "setting", "seed", KL, "score"]]
    table = settings(ok, (metric, *[m for m in METRICS if m != metric]))
    curves = seed_curves(points)
    families = comparable(curves, seeds)
    for family in sorted(set(curves) - set(families)):
        notes.append(
            f"{family}: not compared at matched KL (needs a frontier of 2+ points, anchor "
            "included, in every seed)"
        )
    curves = {f: curves[f] for f in families}
    ranges = [(c[0][0], c[0][-1]) for by_seed in curves.values() for c in by_seed.values()]
    levels = kl_levels(ranges, n)
    if families and not len(levels):
        notes.append("the families' frontiers share no KL range: nothing to compare at matched KL")
    at = matched(curves, seeds, levels)
    if len(seeds) < stats.MIN_CI_SEEDS:
        notes.append(
            f"{len(seeds)} seed(s): no bootstrap interval (it needs {stats.MIN_CI_SEEDS}+); "
            "`seeds won` says how often the leader led"
        )
    return Frontier(dataset, model, metric, runs, table, at, dominance(at), seeds, notes)


def leaders(dom: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(family, first KL, last KL) of each run of consecutive levels one family leads."""
    out: list[tuple[str, float, float]] = []
    for level, family in dom.groupby("kl", sort=True)["leader"].first().items():
        if out and out[-1][0] == family:
            out[-1] = (family, out[-1][1], level)
        else:
            out.append((family, level, level))
    return out


def judge_pairs(runs: pd.DataFrame, judges: tuple[str, str] = ("trained", "independent"),
                ) -> pd.DataFrame:  # fmt: skip
    """How two judges order the settings of each dataset and model: one row per pair of settings
    (mean score over their ok seeds, each judge's score metric), named so that the first judge
    scores `higher` above `lower`; the columns are the differences higher - lower under each
    judge, and `agree` is False where the second judge orders them the other way round (a tie
    under either judge counts as agreement). Settings one judge did not score are left out."""
    import itertools

    import pandas as pd

    first, second = (JUDGES[j][0] for j in judges)
    columns = ["dataset", "model", "higher", "lower", first, second, "agree"]
    rows = []
    ok = runs[(runs["status"] == "ok") & runs[first].notna() & runs[second].notna()]
    for (dataset, model), group in ok.groupby(["dataset", "model"], sort=True):
        means = group.groupby(["family", "setting"], sort=True)[[first, second]].mean()
        for a, b in itertools.combinations(means.index, 2):
            d1 = means.loc[a, first] - means.loc[b, first]
            d2 = means.loc[a, second] - means.loc[b, second]
            if d1 < 0:
                a, b, d1, d2 = b, a, -d1, -d2
            rows.append({"dataset": dataset, "model": model, "higher": _name(a),
                         "lower": _name(b), first: float(d1), second: float(d2),
                         "agree": not (d1 > 0 and d2 < 0)})  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _name(setting: tuple[str, str]) -> str:
    family, value = setting
    return family if value == "-" else f"{family}@{value}"
