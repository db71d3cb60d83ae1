"""Plain-text leaderboard for the terminal (and the README): it formats store.leaderboard."""

from __future__ import annotations

import math

import pandas as pd


def _num(value: float | None, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, fmt)
    )


def flags(r) -> str:
    """⚑ = a run of this row fails the provenance gate or a data check; ✗ = invalid cell."""
    valid = getattr(r, "valid", None)
    invalid = valid is not None and not pd.isna(valid) and not bool(valid)
    return (" ⚑" if getattr(r, "flagged", 0) else "") + (" ✗" if invalid else "")


def _shared(r) -> bool:
    return bool(getattr(r, "speed_shared", False))


def format_leaderboard(frame: pd.DataFrame, suite: str) -> str:
    lines = [f"Leaderboard: suite {suite} (test split; mean ± std over seeds)"]
    notes: list[str] = []
    for (dataset, model, metric), group in frame.groupby(
        ["dataset", "model", "metric"], sort=False
    ):
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
            name = r.entry
            ci_low, ci_high = getattr(r, "ci_low", None), getattr(r, "ci_high", None)
            rows.append({
                "method": name + flags(r),
                metric: score,
                "95% CI": "-" if _num(ci_low, ".4f") == "-" else f"[{ci_low:.4f}, {ci_high:.4f}]",
                "trimmed": _num(getattr(r, "trimmed_mean", None), ".4f"),
                "n": f"{r.n}/{r.runs}",
                "trainable %": _num(r.trainable_pct, ".3f"),
                "peak mem GiB": _num(r.peak_mem_gib, ".2f"),
                "train s": _num(r.train_s, ".1f"),
                "tokens/s": _num(r.tokens_per_s, ".0f") + (" *" if _shared(r) else ""),
                "not ok": r.not_ok,
            })  # fmt: skip
            if flags(r).strip():
                why = []
                if getattr(r, "flagged", 0):
                    why.append(f"{r.flagged} of {r.n} runs flagged: {r.issues}")
                if "✗" in flags(r):
                    why.append(f"invalid: {r.diverged} seeds diverged (more than 1)")
                notes.append(f"{dataset} · {model} · {name}: " + "; ".join(why))
        lines.append(pd.DataFrame(rows).to_string(index=False))
    kinds = set(frame["mem_kind"].dropna())
    if kinds:
        lines.append(f"\npeak memory = {', '.join(sorted(kinds))}")
    lines.append(
        "95% CI = bootstrap of the mean (3+ seeds); trimmed = mean without best and worst (5+ seeds)"
    )
    if any(_shared(r) for r in frame.itertuples()):
        lines.append(
            "* speed shared: a run was packed on one GPU with others (gpus_per_run < 1); "
            "its speed is not comparable"
        )
    if notes:
        lines.append("\n⚑ provenance gate / data checks, ✗ invalid cell:")
        lines += [f"  {n}" for n in notes]
    return "\n".join(lines)
