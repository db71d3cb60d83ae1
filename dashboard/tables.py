"""Display frames built from data.py results: the leaderboard, Pareto points, config diffs.

Pure pandas (no Streamlit, no database), so the pages stay thin and this stays testable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dashboard import stats

GIB = 2**30
T4_FIT_BYTES = 15 * GIB  # a 16 GB T4 leaves ~15 GiB to a process
CUDA_KINDS = frozenset({"cuda_max_allocated"})


def t4_badge(peak_bytes: float | None, kinds: set[str]) -> str:
    """Only CUDA peaks say anything about fitting a T4; a CPU RSS peak is not pretended to."""
    if not kinds or peak_bytes is None or math.isnan(peak_bytes):
        return "–"
    if not kinds <= CUDA_KINDS:
        return "n/a (CPU)"
    return "✅ fits" if peak_bytes <= T4_FIT_BYTES else "❌ > 15 GiB"


def status_counts(statuses: pd.Series) -> str:
    """'failed 1 · oom 2' for the runs that are not ok ('' when all are)."""
    counts = statuses[statuses != "ok"].value_counts()
    return " · ".join(f"{status} {n}" for status, n in sorted(counts.items()))


def entries(scores: pd.DataFrame) -> pd.Series:
    """Leaderboard entry per run: the method key, or 'lora (tuned, 20 trials)' for tuned re-runs.

    A tuned re-run is a different entry from the same method at its suite defaults (cf.
    harness.report); tuning trials never reach here (data.run_scores leaves them out).
    """
    if "origin" not in scores.columns:
        return scores["method_key"]
    trials = scores["tune_trials"].astype("Int64").astype("string").fillna("?")
    tuned = scores["method_key"] + " (tuned, " + trials + " trials)"
    return tuned.where(scores["origin"] == "tuned", scores["method_key"])


def leaderboard(scores: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """One row per entry from per-run scores (data.run_scores), best first in the metric's direction.

    Only ok runs with a value count towards mean/std/CI; every run counts towards `runs` and the
    not-ok status tally. Memory is the largest ok-run peak, time and tokens/s the ok-run mean.
    """
    rows = []
    for method, group in scores.groupby(entries(scores), sort=True):
        ok = group[group["status"] == "ok"]
        values = ok["score"].dropna().to_numpy(dtype=float)
        low, high = stats.bootstrap_ci(values)
        kinds = set(ok["peak_mem_kind"].dropna())
        peak = ok["peak_mem_bytes"].max() if ok["peak_mem_bytes"].notna().any() else math.nan
        rows.append({
            "method": method,
            "mean": values.mean() if values.size else math.nan,
            "std": values.std(ddof=1) if values.size > 1 else math.nan,
            "n": int(values.size),
            "ci_low": low,
            "ci_high": high,
            "trainable_pct": ok["trainable_pct"].mean(),
            "peak_mem_gib": peak / GIB,
            "mem_kind": ", ".join(sorted(kinds)),
            "t4_fit": t4_badge(peak, kinds),
            "train_s": ok["train_s"].mean(),
            "tokens_per_s": ok["tokens_per_s"].mean(),
            "runs": len(group),
            "ok_without_metric": int(ok["score"].isna().sum()),
            "not_ok": status_counts(group["status"]),
        })  # fmt: skip
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    key = board["mean"] if higher_is_better else -board["mean"]
    board = board.loc[key.sort_values(ascending=False, na_position="last").index]
    board = board.reset_index(drop=True)
    board["vs_leader"] = stats.mark_ties(
        board["mean"].tolist(),
        board["ci_low"].tolist(),
        board["ci_high"].tolist(),
        higher_is_better,
    )
    board.insert(0, "rank", np.where(board["mean"].notna(), np.arange(1, len(board) + 1), None))
    return board


COST_AXES = {
    "peak memory (GiB)": "peak_mem_gib",
    "train time (s)": "train_s",
    "trainable params (%)": "trainable_pct",
}


def pareto_points(scores: pd.DataFrame, higher_is_better: bool, cost: str) -> pd.DataFrame:
    """Mean quality and cost per (method, model) over ok runs, with the frontier flagged."""
    ok = scores[(scores["status"] == "ok") & scores["score"].notna()].copy()
    if ok.empty:
        return pd.DataFrame()
    ok["peak_mem_gib"] = ok["peak_mem_bytes"] / GIB
    has_config = "config" in ok.columns
    rows = []
    ok["entry"] = entries(ok)
    for (method, model), group in ok.groupby(["entry", "model_key"], sort=True):
        rows.append({
            "method": method,
            "model": model,
            "quality": group["score"].mean(),
            "n": len(group),
            "peak_mem_gib": group["peak_mem_gib"].max(),
            "train_s": group["train_s"].mean(),
            "trainable_pct": group["trainable_pct"].mean(),
            "mem_kind": ", ".join(sorted(set(group["peak_mem_kind"].dropna()))),
            "config": config_summary(group["config"].iloc[0]) if has_config else "",
        })  # fmt: skip
    points = pd.DataFrame(rows)
    points["cost"] = points[cost]
    points["on_frontier"] = stats.pareto_frontier(
        points["cost"], points["quality"], higher_is_better
    )
    return points.sort_values("cost").reset_index(drop=True)


def config_summary(config: Any, max_len: int = 300) -> str:
    """What distinguishes a method's runs, for a tooltip: method params and the key training knobs."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return config[:max_len]
    if not isinstance(config, Mapping):
        return ""
    training = config.get("training") or {}
    keys = ("learning_rate", "max_steps", "batch_size", "precision")
    parts = [f"{k}={training[k]}" for k in keys if k in training]
    params = json.dumps(config.get("params") or {}, sort_keys=True, separators=(",", ":"))
    text = f"params {params}; " + ", ".join(parts)
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{'training.learning_rate': 1e-4, ...}; lists stay whole (shown as JSON)."""
    if isinstance(config, Mapping):
        out: dict[str, Any] = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(config) if isinstance(config, list) else config}


MISSING = "∅"  # a key one run's config does not have at all


def config_diff(configs: Mapping[str, Any], only_differing: bool = True) -> pd.DataFrame:
    """Flattened configs side by side (rows: keys, columns: runs) plus a `differs` flag."""
    flat = {label: flatten(cfg) for label, cfg in configs.items()}
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    frame = pd.DataFrame(
        {label: [_cell(f.get(k, MISSING)) for k in keys] for label, f in flat.items()},
        index=pd.Index(keys, name="key"),
    )
    frame["differs"] = frame.nunique(axis=1, dropna=False) > 1 if len(frame.columns) else False
    return frame[frame["differs"]] if only_differing else frame


def _cell(value: Any) -> str:
    # One display type per column: st.dataframe cannot mix numbers and strings in a column.
    return value if isinstance(value, str) else json.dumps(value)
