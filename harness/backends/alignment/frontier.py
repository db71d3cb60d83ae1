"""The alignment backend's reward-KL frontier: which stored runs are policies, read with their KL,
judge score and win rate (policy_runs), and the text `ftbench show` prints. The numbers (frontiers,
matched KL, dominance) are harness/store/frontier.py, which the dashboard's frontier page reads
too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import store
from harness.backends.alignment.methods import ALIGN_METHODS
from harness.backends.alignment.methods.base import PolicyMethod
from harness.store.browse import suites_with, upstream_links
from harness.store.frontier import (
    ANCHOR_METHOD,
    JUDGES,
    KL,
    LEVELS,
    METRICS,
    Frontier,
    judge_pairs,
    leaders,
    summarize,
)
from harness.store.queries import entries
from harness.suite.suite_file import sweep_family, sweep_setting
from harness.suite.tasks import TASKS

if TYPE_CHECKING:  # imported where used: every CLI call imports the backends, few need these
    import pandas as pd


def _policies() -> tuple[list[str], list[str]]:
    """(policy method names, task names) of the alignment backend: which runs are policies."""
    methods = [n for n in ALIGN_METHODS.names() if isinstance(ALIGN_METHODS.get(n), PolicyMethod)]
    tasks = [n for n in TASKS.names() if TASKS.get(n).backend == "alignment"]
    return methods, tasks


def suites_with_policies(db_path: Path | str) -> list[str]:
    """The suites that stored at least one alignment policy run."""
    return suites_with(db_path, *_policies())


def policy_runs(db_path: Path | str, suite: str) -> pd.DataFrame:
    """Every leaderboard run of the suite's alignment policies (stages left out) with its KL,
    judge score and win rate on test, its family and setting, and the judge it was scored by."""
    import pandas as pd

    columns = ["run_id", "dataset", "model", "method_key", "method", "family", "setting", "seed",
               "status", "reason", KL, *METRICS, "judge_run"]  # fmt: skip
    frames = {name: store.run_scores(db_path, suite, metric=name) for name in (KL, *METRICS)}
    methods, tasks = _policies()
    base = frames[KL]
    base = base[base["method"].isin(methods) & base["task"].isin(tasks)]
    if base.empty:
        return pd.DataFrame(columns=columns)
    out = base.rename(columns={"dataset_key": "dataset", "model_key": "model", "score": KL})
    for name in METRICS:
        out[name] = out["run_id"].map(frames[name].set_index("run_id")["score"])
    # a tuned re-run is its own entry ('dpo (tuned, 4 trials)'), as on the leaderboard
    out["family"] = entries(out).map(sweep_family)
    out["setting"] = out["method_key"].map(lambda k: sweep_setting(k) or "-")
    out["judge_run"] = out["run_id"].map(upstream_links(db_path, "judge"))
    return out[columns].reset_index(drop=True)


def frontiers(
    db_path: Path | str, suite: str, metric: str = "judge_score", levels: int = LEVELS
) -> list[Frontier]:
    return summarize(policy_runs(db_path, suite), metric, levels)


# --------------------------------------------------------------------------- text


def _interval(mean: float, low: float, high: float, fmt: str = ".3f") -> str:
    if math.isnan(mean):
        return "-"
    return format(mean, fmt) + ("" if math.isnan(low) else f" [{low:{fmt}}, {high:{fmt}}]")


def _table(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False)


def format_frontier(f: Frontier) -> str:
    """The `ftbench show` section of one frontier: the points, the score at matched KL and
    who leads there, the runs that did not end ok, and the notes."""
    others = [m for m in METRICS if m != f.metric]
    parts = [
        f"Alignment frontier: {f.metric} vs KL(policy ‖ start) · {f.dataset} · {f.model} "
        f"(seeds {', '.join(map(str, f.seeds)) or 'none'}; mean over ok seeds)",
        _table([
            {"family": r.family, "setting": r.setting, "KL": f"{r.kl:.3f}",
             f.metric: f"{getattr(r, f.metric):.3f}",
             **{m: f"{getattr(r, m):.3f}" for m in others}, "seeds": r.n,
             "frontier": "anchor" if r.family == ANCHOR_METHOD else "✓" if r.on_frontier else ""}
            for r in f.settings.itertuples()
        ]),
    ]  # fmt: skip
    if not f.matched.empty:
        lead = f.dominance.groupby("kl").head(1).set_index("kl")  # the leader vs the runner-up
        rows = []
        for level, group in f.matched.groupby("kl", sort=True):
            row = {"KL": f"{level:.3f}"}
            for r in group.sort_values("family").itertuples():
                row[r.family] = _interval(r.mean, r.ci_low, r.ci_high)
            if level in lead.index:
                d = lead.loc[level]
                row |= {
                    "leader": d["leader"],
                    "lead over": f"{d['other']} "
                    + _interval(d["difference"], d["ci_low"], d["ci_high"], "+.3f"),
                    "seeds won": f"{d['seeds_won']}/{d['seeds']}",
                    "verdict": d["verdict"],
                }
            rows.append(row)
        parts.append(
            f"\n{f.metric} at matched KL: each seed's frontier interpolated, mean over seeds "
            "[95% bootstrap CI, 3+ seeds]; the leader's paired lead over the runner-up"
        )
        parts.append(_table(rows))
        spans = [f"{fam} at KL {lo:.3f}-{hi:.3f}" for fam, lo, hi in leaders(f.dominance)]
        if spans:
            parts.append("leads: " + "; ".join(spans))
    bad = f.runs[f.runs["status"] != "ok"]
    parts += [f"not ok: {r.method_key}·s{r.seed}: {r.status}: {r.reason}" for r in bad.itertuples()]
    parts += [f"note: {n}" for n in f.notes]
    return "\n".join(parts)


def format_disagreement(runs: pd.DataFrame) -> str | None:
    """Where the trained and the independent judge order the settings differently."""
    pairs = judge_pairs(runs)
    if pairs.empty:
        return None
    first, second = JUDGES["trained"][0], JUDGES["independent"][0]
    parts = []
    for (dataset, model), group in pairs.groupby(["dataset", "model"], sort=True):
        flips = group[~group["agree"]]
        parts.append(
            f"Judges' ranking · {dataset} · {model}: the trained judge ({first}) and the "
            f"independent judge ({second}) order {len(group) - len(flips)} of {len(group)} "
            "pairs of settings alike (mean over ok seeds)"
        )
        if not flips.empty:
            parts.append(
                "they disagree on (the trained judge ranks `higher` first; differences "
                "higher - lower under each judge):"
            )
            shown = flips[["higher", "lower", first, second]].round(4)
            parts.append(shown.to_string(index=False))
    return "\n".join(parts)


def report(db_path: Path | str, suite: str) -> str | None:
    runs = policy_runs(db_path, suite)
    if runs.empty:
        return None
    scored = [m for m in METRICS if runs[m].notna().any()]  # older runs lack the independent judge
    sections = [format_frontier(f) for m in scored for f in summarize(runs, m)]
    disagreement = format_disagreement(runs)
    return "\n\n".join([*sections, *([disagreement] if disagreement else [])])
