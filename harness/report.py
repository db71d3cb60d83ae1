"""Plain-text leaderboard for the terminal (and the README)."""

from __future__ import annotations

import math

import pandas as pd


def _num(value: float | None, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, fmt)
    )


def format_leaderboard(frame: pd.DataFrame, suite: str) -> str:
    lines = [f"Leaderboard: suite {suite} (test split; mean ± std over seeds)"]
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=False):
        metric = group["metric"].iloc[0]
        arrow = "↑" if group["higher_is_better"].fillna(True).iloc[0] else "↓"
        lines.append(f"\n{dataset} · {model} · {metric} {arrow}")
        rows = []
        for r in group.itertuples():
            score = (
                "-"
                if r.n == 0
                else f"{r.mean:.4f} ± {_num(r.std, '.4f')}"
                if r.n > 1
                else f"{r.mean:.4f}"
            )
            rows.append({
                "method": r.method + (f" (tuned, {r.tune_trials} trials)" if r.origin == "tuned" else ""),
                metric: score,
                "n": f"{r.n}/{r.runs}",
                "trainable %": _num(r.trainable_pct, ".3f"),
                "peak mem GiB": _num(r.peak_mem_gib, ".2f"),
                "train s": _num(r.train_s, ".1f"),
                "tokens/s": _num(r.tokens_per_s, ".0f"),
                "not ok": r.other_statuses or "",
            })  # fmt: skip
        lines.append(pd.DataFrame(rows).to_string(index=False))
    kinds = set(frame["mem_kind"].dropna())
    if kinds:
        lines.append(f"\npeak memory = {', '.join(sorted(kinds))}")
    return "\n".join(lines)
