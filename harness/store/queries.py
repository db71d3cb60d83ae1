"""Reading the store: the provenance gate, per-run scores and the one leaderboard computation.

`ftbench show`, `ftbench export` and the dashboard all rank with `leaderboard` (the dashboard only
formats its frame): mean ± std over seeds, a bootstrap interval and a trimmed mean
(harness/store/stats.py), cells with more than one diverged seed marked invalid and ranked last, runs
failing the provenance gate or a data check flagged, ties with the leader, and whether the peak
memory fits the run's budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.store.schema import NOT_TRIAL, RUN_ISSUES_SQL, connect, ensure_tables

# Systems-only runs (`weights: random`) measure memory and speed; their quality metrics are kept
# under this split, so no ranking (which reads `test`) ever sees them.
SYSTEMS_ONLY_SPLIT = "systems_only"
QUALITY_RUN = "coalesce(json_extract_string(r.config, '$.model.weights'), 'pretrained') <> 'random'"

# One row per leaderboard run (tuning trials and systems-only runs are never ranked) with its
# value of the metric ($metric, or each run's headline metric when NULL); every run is kept, so a
# failed run or one without the metric is counted, not silently dropped.
RUN_SCORES_SQL = f"""
WITH issues AS ({RUN_ISSUES_SQL})
SELECT r.run_id, r.suite, r.dataset_key, r.model_key, r.method_key, r.method, r.task, r.seed,
       r.status, r.reason, coalesce(r.origin, 'run') AS origin, r.tune_trials,
       coalesce($metric, r.headline_metric) AS metric, m.value AS score, m.higher_is_better,
       r.trainable_pct, r.trainable_params, r.peak_mem_bytes, r.peak_mem_kind, r.train_s,
       r.total_s, r.steady_tokens_per_s, r.steady_samples_per_s,
       -- packed on a shared GPU by the Ray executor (gpus_per_run < 1): speed not comparable
       coalesce(TRY_CAST(json_extract(r.notes, '$.executor.gpus_per_run') AS DOUBLE) < 1, false)
           AS speed_shared,
       list_concat(i.provenance_issues, i.data_issues) AS issues,
       json_extract_string(r.config, '$.budget.profile') AS budget_profile,
       TRY_CAST(json_extract(r.config, '$.budget.gpu_mem_gb') AS DOUBLE) AS budget_gb,
       r.config
FROM runs r
LEFT JOIN metrics m
       ON m.run_id = r.run_id AND m.split = $split AND m.name = coalesce($metric, r.headline_metric)
LEFT JOIN issues i ON i.run_id = r.run_id
WHERE r.suite = $suite AND {NOT_TRIAL} AND {QUALITY_RUN}
  AND ($dataset IS NULL OR r.dataset_key = $dataset) AND ($model IS NULL OR r.model_key = $model)
ORDER BY r.dataset_key, r.model_key, r.method_key, r.seed
"""

GROUP_KEYS = ["dataset", "model", "metric"]  # one ranking per dataset, model and metric
CUDA_KINDS = frozenset({"cuda_max_allocated"})


def run_scores(
    db_path: Path | str,
    suite: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    split: str = "test",
    with_config: bool = False,
):
    """One row per leaderboard run of a suite with its score (see RUN_SCORES_SQL)."""
    ensure_tables(db_path)
    params = {"suite": suite, "dataset": dataset, "model": model, "metric": metric, "split": split}
    with connect(db_path, read_only=True) as con:
        frame = con.execute(RUN_SCORES_SQL, params).df()
    return frame if with_config else frame.drop(columns=["config"])


def entries(runs) -> Any:
    """The leaderboard entry of each run: its method key, or 'lora (tuned, 20 trials)' for the
    re-runs of a tuned cell (a different entry from the same method at its suite defaults)."""
    trials = runs["tune_trials"].astype("Int64").astype("string").fillna("?")
    tuned = runs["method_key"] + " (tuned, " + trials + " trials)"
    return tuned.where(runs["origin"] == "tuned", runs["method_key"])


def leaderboard(
    db_path: Path | str,
    suite: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    where: Callable[[Any], Any] | None = None,
):
    """One row per entry (method, or tuned method) of each dataset, model and metric (the
    headline metric of each run when `metric` is None), best first; `where` narrows the runs
    first (the dashboard's filter). See `summarize` for the columns."""
    runs = run_scores(db_path, suite, dataset=dataset, model=model, metric=metric)
    return summarize(where(runs) if where is not None else runs)


def summarize(runs):
    """The leaderboard of a run_scores frame.

    Per entry: mean, std, n (ok runs with a value), bootstrap 95% CI (3+ seeds), trimmed mean
    (5+ seeds), diverged seeds and validity (harness.store.stats), runs (every status), not_ok (status
    counts), ok_without_metric, flagged runs and their issues, trainable %, the largest peak
    memory and whether it fits the run's budget, mean train time, and steady-state tokens/s and
    samples/s (after the warm-up steps, harness/run/speed.py), and speed_shared (a run was packed
    with others on one GPU, so its speed is not comparable). Within each
    dataset / model / metric: valid cells first, then by mean in the metric's direction (missing
    last); `rank` counts the ranked rows and `vs_leader` says which are tied with the leader.
    """
    import numpy as np
    import pandas as pd

    from harness.store import stats
    from harness.suite.tasks import higher_is_better

    columns = [
        *GROUP_KEYS, "method", "origin", "tune_trials", "entry", "higher_is_better", "rank",
        "mean", "std", "n", "runs", "ci_low", "ci_high", "trimmed_mean", "diverged", "valid",
        "vs_leader", "not_ok", "ok_without_metric", "flagged", "issues", "trainable_pct",
        "peak_mem_bytes", "peak_mem_gib", "mem_kind", "budget_fit", "budget_gb", "train_s", "tokens_per_s",
        "samples_per_s", "speed_shared",
    ]  # fmt: skip
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs.rename(columns={"dataset_key": "dataset", "model_key": "model"})
    runs = runs.assign(entry=entries(runs))
    rows = []
    for (dataset, model, metric, entry), cell in runs.groupby([*GROUP_KEYS, "entry"], sort=True):
        ok = cell[cell["status"] == "ok"]
        values = ok["score"].dropna().tolist()
        direction = cell["higher_is_better"].dropna()
        flagged = ok[ok["issues"].map(len) > 0]
        kinds = set(ok["peak_mem_kind"].dropna())
        peak = ok["peak_mem_bytes"].max() if ok["peak_mem_bytes"].notna().any() else math.nan
        rows.append({
            "dataset": dataset, "model": model, "metric": metric,
            "method": cell["method_key"].iloc[0], "origin": cell["origin"].iloc[0],
            "tune_trials": cell["tune_trials"].max(), "entry": entry,
            "higher_is_better": bool(direction.iloc[0]) if len(direction)
            else higher_is_better(cell["task"].iloc[0], metric),
            **stats.summarize(values, int((cell["status"] == "diverged").sum())),
            "runs": len(cell),
            "not_ok": status_counts(cell["status"]),
            "ok_without_metric": int(ok["score"].isna().sum()),
            "flagged": len(flagged),
            "issues": "; ".join(sorted({i for found in flagged["issues"] for i in found})),
            "trainable_pct": ok["trainable_pct"].mean(),
            "peak_mem_bytes": peak,
            "peak_mem_gib": peak / 2**30,
            "mem_kind": ", ".join(sorted(kinds)),
            "budget_fit": budget_fit(peak, kinds, _limit(ok)),
            "budget_gb": _limit(ok) / 1e9,
            "train_s": ok["train_s"].mean(),
            # steady state (harness/run/speed.py): what a user's run sustains after its warm-up
            "tokens_per_s": ok["steady_tokens_per_s"].mean(),
            "samples_per_s": ok["steady_samples_per_s"].mean(),
            # a run packed with others on one GPU shared its speed: not comparable
            "speed_shared": bool(ok["speed_shared"].any()),
        })  # fmt: skip
    board = pd.DataFrame(rows)
    ordered = []
    for _, group in board.groupby(GROUP_KEYS, sort=True):
        up = group["higher_is_better"].dropna()
        up = bool(up.iloc[0]) if len(up) else True  # a descriptive metric ranks high first
        key = group["mean"] if up else -group["mean"]
        group = group.assign(_invalid=~group["valid"].astype(bool), _key=key)
        group = group.sort_values(
            ["_invalid", "_key"], ascending=[True, False], na_position="last", kind="stable"
        )
        ranked = group["mean"].notna().to_numpy()
        group["rank"] = np.where(ranked, np.cumsum(ranked), None)
        group["vs_leader"] = stats.mark_ties(
            group["mean"].tolist(), group["ci_low"].tolist(), group["ci_high"].tolist(), up,
            group["valid"].tolist(),
        )  # fmt: skip
        ordered.append(group.drop(columns=["_invalid", "_key"]))
    return pd.concat(ordered, ignore_index=True)[columns]


def status_counts(statuses) -> str:
    """'failed 1 · oom 2' for the runs that are not ok ('' when all are)."""
    counts = statuses[statuses != "ok"].value_counts()
    return " · ".join(f"{status} {n}" for status, n in sorted(counts.items()))


def _limit(ok) -> float:
    """The budget the runs were held to, in bytes: their suite's, else a T4's usable 15 GB."""
    from harness.suite.budget_profile import T4_USABLE_GB

    if ok.empty:
        return T4_USABLE_GB * 1e9
    profile, gb = ok["budget_profile"].iloc[0], ok["budget_gb"].iloc[0]
    return (gb if profile == "custom" and gb == gb else T4_USABLE_GB) * 1e9


def budget_fit(peak: float, kinds: set[str], limit: float) -> bool | None:
    """Whether the CUDA peak fits the budget; None when unknown: no peak, or a CPU RSS peak,
    which says nothing about fitting a GPU (views say which, from mem_kind)."""
    if not kinds or peak != peak or not kinds <= CUDA_KINDS:
        return None
    return bool(peak <= limit)


def run_issues(db_path: Path | str, suite: str | None = None):
    """Per run: provenance_issues, data_issues (lists) and provenance_ok / data_ok."""
    ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT *, len(provenance_issues) = 0 AS provenance_ok, "
            f"len(data_issues) = 0 AS data_ok FROM ({RUN_ISSUES_SQL}) {where} ORDER BY run_id",
            {"suite": suite} if suite else {},
        ).df()


def repro_history(db_path: Path | str, suite: str | None = None):
    """Every stored repro check (newest first), optionally of one suite."""
    ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT * FROM repro_checks {where} ORDER BY checked_at DESC",
            {"suite": suite} if suite else {},
        ).df()
