"""Compare 2–4 runs: flattened config diff (differing keys highlighted), metrics, overlaid curves."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, tables, ui

HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.35)"

st.title("Compare runs")
ui.require_runs()
runs = ui.filter_box(
    ui.query(data.runs_index),
    key="cmp_filter",
    help_fields="suite, method, model, dataset, status, run",
)
labels = {r.run_id: ui.run_label(r) for r in runs.itertuples()}
picked = st.multiselect(
    "Runs (2–4)",
    list(labels),
    default=list(labels)[:2] if len(labels) >= 2 else None,
    max_selections=4,
    format_func=labels.__getitem__,
    key="cmp_runs",
)
if len(picked) < 2:
    st.info("Pick at least two runs to compare (the filter in the sidebar narrows the list).")
    st.stop()

# Short column names: method·seed, made unique with the run_id when two runs share them.
by_id = runs.set_index("run_id")
short = {rid: f"{by_id.loc[rid, 'method_key']}·s{by_id.loc[rid, 'seed']}" for rid in picked}
if len(set(short.values())) < len(short):
    short = {rid: f"{name} [{rid[:6]}]" for rid, name in short.items()}
st.caption(" · ".join(f"**{short[rid]}** = {labels[rid]}" for rid in picked))

st.markdown("#### Config")
show_all = st.toggle("Show identical keys too", value=False, key="cmp_all")
configs = ui.query(data.run_configs, tuple(picked))
diff = tables.config_diff(
    {short[r]: configs.get(r, {}) for r in picked}, only_differing=not show_all
)
if diff.empty:
    st.info("The resolved configs are identical.")
else:
    differs = diff.pop("differs")
    styled = diff.style.apply(
        lambda row: [HIGHLIGHT if differs[row.name] else "" for _ in row], axis=1
    )
    # Tall enough for ~20 keys before it scrolls (the default shows 10).
    st.dataframe(styled, width="stretch", height=min(38 + 35 * len(diff), 740))
    st.caption(f"{int(differs.sum())} differing key(s), highlighted; ∅ = key absent from that run.")

st.markdown("#### Test metrics")
metrics = ui.query(data.run_metrics, tuple(picked))
if metrics.empty:
    st.info("None of these runs recorded test metrics.")
else:
    wide = metrics.pivot_table(index="name", columns="run_id", values="value", aggfunc="first")
    wide = wide.reindex(columns=[r for r in picked if r in wide.columns]).rename(columns=short)
    st.dataframe(wide, width="stretch")
    missing = [short[r] for r in picked if r not in set(metrics["run_id"])]
    if missing:
        st.caption(f"No metrics recorded for: {', '.join(missing)}.")

st.markdown("#### Curves")
curves = ui.query(data.curves, tuple(picked))
if curves.empty:
    st.info("None of these runs recorded a training curve.")
    st.stop()
names = sorted(curves["name"].unique(), key=lambda n: (n != "loss", n))
name = st.radio("Curve", names, horizontal=True, key="cmp_curve")
one = curves[curves["name"] == name].assign(run=lambda f: f["run_id"].map(short))
chart = (
    alt.Chart(one)
    .mark_line(point=len(one) <= 200)
    .encode(
        x="step:Q",
        y=alt.Y("value:Q", title=name, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", sort=[short[r] for r in picked]),
        tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
    )
    .properties(height=360)
)
st.altair_chart(chart, width="stretch")
no_curve = [short[r] for r in picked if r not in set(one["run_id"])]
if no_curve:
    st.caption(f"No `{name}` curve for: {', '.join(no_curve)}.")
