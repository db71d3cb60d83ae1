"""Pareto: quality against a cost (peak memory, train time, trainable params), frontier drawn."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, tables, ui
from harness.store.pareto import pareto_mask

st.title("Pareto")
ui.require_runs()
suite = ui.pick_suite()
dataset, model, metric, hib = ui.pick_metric(suite, key="pareto", with_all_models=True)
cost_label = st.sidebar.radio("Cost axis", list(tables.COST_AXES), key="pareto_cost")
log_x = st.sidebar.checkbox("Log scale for cost", value=cost_label.startswith("trainable"))
clauses = ui.filter_clauses(key="pareto_filter")
board = ui.query(data.pareto, suite, dataset, metric, model, clauses)

points = tables.pareto_points(board, hib, tables.COST_AXES[cost_label])
points = points[points["cost"].notna()] if not points.empty else points
if points.empty:
    st.info(f"No ok run with both `{metric}` and {cost_label} to plot.")
    st.stop()
if log_x:
    # A log axis cannot show zero cost (zero-shot has no trainable params): drop those points and
    # recompute the frontier among the points actually drawn.
    points = points[points["cost"] > 0].copy()
    points["on_frontier"] = pareto_mask(points["cost"], points["quality"], hib)

st.caption(
    f"Suite **{suite}** · dataset **{dataset}** · {'all models' if model is None else model} · "
    f"test **{metric}** ({ui.direction_arrow(hib)}) vs {cost_label} (lower is better). "
    "One point per method × model (mean over ok seeds); the line joins the non-dominated points."
)

x = alt.X(
    "cost:Q", title=cost_label, scale=alt.Scale(type="log" if log_x else "linear", zero=False)
)
# Padding (pixels) keeps the best point and its label off the plot's edge.
y = alt.Y(
    "quality:Q", title=f"{metric} ({'↑' if hib else '↓'})", scale=alt.Scale(zero=False, padding=24)
)
tooltip = [
    alt.Tooltip("method:N"),
    alt.Tooltip("model:N"),
    alt.Tooltip("quality:Q", title=metric, format=".4f"),
    alt.Tooltip("cost:Q", title=cost_label, format=".4g"),
    alt.Tooltip("n:Q", title="seeds"),
    alt.Tooltip("mem_kind:N", title="mem kind"),
    alt.Tooltip("config:N"),
]
base = alt.Chart(points)
dots = base.mark_circle(size=110).encode(
    x=x,
    y=y,
    color=alt.Color("on_frontier:N", title="on frontier", scale=alt.Scale(domain=[True, False])),
    shape=alt.Shape("model:N"),
    tooltip=tooltip,
)
labels = base.mark_text(align="left", dx=8, dy=-6, fontSize=12).encode(x=x, y=y, text="method:N")
frontier = (
    alt.Chart(points[points["on_frontier"]])
    .mark_line(interpolate="step-after", strokeDash=[4, 3])
    .encode(x=x, y=y, order="cost:Q")
)
st.altair_chart((frontier + dots + labels).properties(height=520).interactive(), width="stretch")

st.subheader("Frontier")
st.dataframe(
    points[points["on_frontier"]][
        ["method", "model", "quality", "cost", "n", "mem_kind", "config"]
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "quality": st.column_config.NumberColumn(metric, format="%.4f"),
        "cost": st.column_config.NumberColumn(cost_label, format="%.4g"),
    },
)
if "cpu_peak_rss" in set(points["mem_kind"]):
    st.caption("Peak memory of CPU runs is process RSS, not GPU memory.")
