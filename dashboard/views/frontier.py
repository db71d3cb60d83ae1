"""Alignment frontier: judge score (or win rate) against KL(policy ‖ start) per method family.

The numbers come from harness.backends.alignment.frontier (the same summary `ftbench show`
prints); this page draws them: every run, the mean point of each swept setting, each family's
frontier, and the score at matched KL with its bootstrap band over seeds.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from harness.store import frontier as fr

BAND_LEVELS = 24  # matched-KL levels drawn (the table below lists fewer)

st.title("Alignment frontier")
ui.require_runs()
suites = ui.query(data.alignment_suites)
if not suites:
    st.info(
        "No alignment policy runs yet — run a suite with an alignment task, "
        "`positive_continuation` or `preference_pairs` (e.g. `ftbench run "
        "suites/rlhf_frontier_smoke.yaml`); its PPO / DPO sweeps show up here."
    )
    st.stop()
suite = ui.url_select("Suite", suites, "fr_suite", "suite", unknown_stops=True)
runs = ui.query(data.alignment_runs, suite)
dataset = ui.url_select("Dataset", sorted(runs["dataset"].unique()), "fr_dataset", "dataset")
runs = runs[runs["dataset"] == dataset]
model = ui.url_select("Model", sorted(runs["model"].unique()), "fr_model", "model")
runs = runs[runs["model"] == model]
# Which judge scores the policies: the trained reward model, or the independent one (VADER
# offline, a pretrained sentiment classifier on hub suites; harness/backends/alignment/judges.py).
judge = ui.url_select("Judge", list(fr.JUDGES), "fr_judge", "judge")
score, win_rate = fr.JUDGES[judge]
metric = ui.url_select("Score", [score, win_rate], f"fr_metric_{judge}", "metric")
(summary,) = fr.summarize(runs, metric, BAND_LEVELS)
ok = summary.ok
if ok.empty:
    st.info(f"No run of `{suite}` on `{dataset}` / `{model}` ended ok with `{metric}` and `kl`.")
    st.stop()

st.caption(
    f"Suite **{suite}** · **{dataset}** · **{model}** · test **{metric}** (↑) against "
    f"KL(policy ‖ start) (↓), seeds {', '.join(map(str, summary.seeds))}. Small dots: runs; "
    "large dots: the mean of a setting over its seeds; solid lines: each family's frontier (its "
    "non-dominated mean points, from the start policy at KL 0); dashed lines and bands: the score "
    "at matched KL, each seed's frontier interpolated then averaged, with a 95% bootstrap "
    "interval over seeds (drawn with 3+ seeds)."
)

table = summary.settings
anchor = table[table["family"] == fr.ANCHOR_METHOD]
lines = pd.concat(
    [
        pd.concat([rows[rows["on_frontier"]], anchor.assign(family=family)])
        for family, rows in table[table["family"] != fr.ANCHOR_METHOD].groupby("family")
    ]
    or [table.iloc[0:0]]
)
x = alt.X(f"{fr.KL}:Q", title="KL(policy ‖ start)")
y = alt.Y(f"{metric}:Q", title=f"{metric} (↑)", scale=alt.Scale(zero=False, padding=16))
color = alt.Color("family:N", title="family", scale=alt.Scale(scheme="tableau10"))
values = [alt.Tooltip(f"{metric}:Q", format=".4f"), alt.Tooltip(f"{fr.KL}:Q", format=".4f")]
layers = [
    alt.Chart(lines).mark_line().encode(x=x, y=y, color=color, order=f"{fr.KL}:Q"),
    alt.Chart(ok)
    .mark_circle(size=40, opacity=0.35)
    .encode(x=x, y=y, color=color, tooltip=["method_key:N", "seed:Q", "run_id:N", *values]),
    alt.Chart(table)
    .mark_point(size=130, filled=True)
    .encode(
        x=x,
        y=y,
        color=color,
        shape=alt.Shape("on_frontier:N", title="on frontier"),
        tooltip=["family:N", "setting:N", "n:Q", *values],
    ),  # fmt: skip
    alt.Chart(table[table["family"] != fr.ANCHOR_METHOD])
    .mark_text(align="left", dx=8, dy=-8, fontSize=11)
    .encode(x=x, y=y, text="setting:N", color=color),
]
matched = summary.matched.drop(columns=["per_seed"])
if not matched.empty:
    curve = matched.rename(columns={"mean": metric})
    layers.append(
        alt.Chart(curve)
        .mark_line(strokeDash=[5, 4])
        .encode(x=x, y=alt.Y(f"{metric}:Q"), color=color)
    )
    band = matched.dropna(subset=["ci_low", "ci_high"])
    if not band.empty:
        layers.insert(
            0,
            alt.Chart(band)
            .mark_area(opacity=0.18)
            .encode(x=x, y=alt.Y("ci_low:Q"), y2="ci_high:Q", color=color),
        )
st.altair_chart(alt.layer(*layers).properties(height=480).interactive(), width="stretch")

st.subheader("Points")
st.dataframe(
    table.rename(columns={"n": "seeds"}),
    hide_index=True,
    width="stretch",
    column_config={
        c: st.column_config.NumberColumn(c, format="%.4f") for c in (fr.KL, *fr.METRICS)
    },
)

st.subheader("At matched KL")
if matched.empty:
    st.info("No KL range shared by the families' frontiers in every seed: nothing to compare.")
else:
    shown = fr.summarize(runs, metric)[0]  # the few levels `ftbench show` lists
    st.dataframe(
        shown.matched.drop(columns=["per_seed"]).rename(columns={"n": "seeds"}),
        hide_index=True,
        width="stretch",
    )
    st.markdown("**Who leads** (paired over seeds: the leader minus each other family)")
    st.dataframe(shown.dominance, hide_index=True, width="stretch")
pairs = fr.judge_pairs(runs)
if not pairs.empty:
    st.subheader("Where the judges disagree")
    flips = pairs[~pairs["agree"]]
    st.caption(
        f"The trained judge and the independent judge order {len(pairs) - len(flips)} of "
        f"{len(pairs)} pairs of settings alike (mean score over ok seeds). The pairs they order "
        "the other way round: the trained judge ranks `higher` first; the columns are the "
        "differences higher - lower under each judge."
    )
    if not flips.empty:
        st.dataframe(flips.drop(columns=["agree"]), hide_index=True, width="stretch")
for note in summary.notes:
    st.caption(f"Note: {note}")
bad = summary.runs[summary.runs["status"] != "ok"]
if not bad.empty:
    st.warning(f"{len(bad)} run(s) did not end ok; they are not on the plot.")
    st.dataframe(
        bad[["method_key", "seed", "status", "reason", "run_id"]], hide_index=True, width="stretch"
    )
