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


def interval_text(low, high, fmt: str = ".4f") -> str:
    return "-" if _num(low, fmt) == "-" else f"[{low:{fmt}}, {high:{fmt}}]"


def versus_text(r) -> str:
    """'behind −0.0400 [−0.06, −0.02] p=0.001' (p Holm-corrected), or the plain verdict."""
    verdict = getattr(r, "vs_leader", "")
    p = getattr(r, "p_value", float("nan"))
    if verdict in ("ahead", "tied", "behind") and not pd.isna(p):
        return f"{verdict} {r.diff:+.4f} {interval_text(r.diff_low, r.diff_high)} p={p:.2g}"
    return verdict


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
            rows.append({
                "method": name + flags(r),
                metric: score,
                "95% CI seeds": interval_text(r.ci_low, r.ci_high),
                "95% CI test set": interval_text(r.ex_low, r.ex_high),
                "vs leader (Δ [95%] p)": versus_text(r),
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
    lines += _legend(frame)
    lines += _ranks(frame)
    if any(_shared(r) for r in frame.itertuples()):
        lines.append(
            "* speed shared: a run was packed on one GPU with others (gpus_per_run < 1); "
            "its speed is not comparable"
        )
    if notes:
        lines.append("\n⚑ provenance gate / data checks, ✗ invalid cell:")
        lines += [f"  {n}" for n in notes]
    return "\n".join(lines)


# The leaderboard's columns a machine-readable `ftbench show --format` writes, in this order.
BOARD_COLUMNS = [
    "dataset", "model", "metric", "higher_is_better", "rank", "entry", "mean", "std", "n", "runs",
    "ci_low", "ci_high", "ci_method", "ex_n", "ex_low", "ex_high", "ex_method", "vs_leader",
    "diff", "diff_low", "diff_high", "p_value", "test", "trimmed_mean", "valid", "not_ok",
    "flagged", "issues", "trainable_pct", "peak_mem_gib", "mem_kind", "train_s", "tokens_per_s",
]  # fmt: skip


def format_board(frame: pd.DataFrame, fmt: str) -> str:
    """The leaderboard table (store.leaderboard) as markdown, JSON records or CSV; missing
    values are empty (CSV, markdown) or null (JSON), never a stand-in number."""
    table = frame[[c for c in BOARD_COLUMNS if c in frame.columns]]
    if fmt == "json":
        return table.to_json(orient="records", indent=2)
    if fmt == "csv":
        return table.to_csv(index=False).rstrip("\n")
    if fmt == "markdown":

        def cell(value) -> str:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return ""
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
        return "\n".join(lines)
    raise ValueError(f"unknown format {fmt!r}: text, markdown, json or csv")


def _legend(frame: pd.DataFrame) -> list[str]:
    lines = [
        "95% CI seeds = Student t over the seeds' scores (2+ seeds): the method's expected score "
        "over training seeds; trimmed = mean without best and worst (5+ seeds)",
        "95% CI test set = from the per-example scores (Wilson for correct/incorrect, t "
        "otherwise): test-set sampling only, shown for one seed too",
        "vs leader = paired test against the leader (paired t over shared seeds; with one seed "
        "McNemar exact or a paired bootstrap over the examples), p Holm-corrected over the rows "
        "of one ranking; tied = p >= 0.05",
    ]
    if (frame["ex_n"] == 0).all():
        lines.append(
            "(no per-example scores stored for these runs (before schema 5, or a metric that is "
            "not a mean over examples): the test-set interval is empty and one-seed rows get "
            "no test)"
        )
    return lines


def _ranks(frame: pd.DataFrame) -> list[str]:
    """Average ranks across datasets and models, Friedman and the Nemenyi CD (Demšar 2006)."""
    from harness.store.queries import rank_tests

    lines = []
    for metric, test in rank_tests(frame):
        order = sorted(zip(test.avg_rank, test.entries, strict=True))
        ranks = ", ".join(f"{entry} {rank:.2f}" for rank, entry in order)
        lines.append(
            f"\nAcross {test.n_blocks} dataset × model cells ({metric}): average rank (1 = best) "
            f"{ranks}; Friedman p={test.p:.2g}; Nemenyi critical difference {test.cd:.2f} "
            "(entries closer than this in average rank are not told apart)"
        )
    return lines
