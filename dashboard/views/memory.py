"""Memory: the estimator's predictions against what runs measured (`ftbench memcheck`): a
predicted-vs-measured plot above the table."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from harness.show.memcheck import T4_USABLE_GB

records = ui.empty_state_page(
    "memory",
    "Memory",
    "No memory records yet — every run records its predicted and measured memory; run a suite "
    "(`ftbench run <suite>`), and `ftbench plan <suite>` shows predictions without running.",
    show_table=False,
)
if records is None:
    st.stop()


def predicted_vs_measured(checks: pd.DataFrame) -> alt.LayerChart:
    """One point per run (its GPU peak; on CPU the sum of its exact terms), the y = x line and,
    for GPU peaks, the T4 budget line; coloured by method."""
    gpu = checks[checks["what"] == "gpu peak"].dropna(subset=["measured_mb"])
    if gpu.empty:
        points = (
            checks.dropna(subset=["measured_mb"])
            .groupby(["run_id", "run", "method"], as_index=False)[["predicted_mb", "measured_mb"]]
            .sum()
        )
        what = "weights + gradients + optimizer (CPU runs)"
    else:
        points, what = gpu, "peak (CUDA max allocated)"
    points = points.assign(predicted_gb=points["predicted_mb"] / 1e3,
                           measured_gb=points["measured_mb"] / 1e3)  # fmt: skip
    top = float(max(points["predicted_gb"].max(), points["measured_gb"].max(), 0.001)) * 1.05
    lines = [pd.DataFrame({"predicted_gb": [0.0, top], "measured_gb": [0.0, top], "line": "y = x"})]
    if not gpu.empty:
        limit = T4_USABLE_GB
        lines.append(pd.DataFrame({"predicted_gb": [limit, limit], "measured_gb": [0.0, top],
                                   "line": f"budget {limit:g} GB"}))  # fmt: skip
        lines.append(pd.DataFrame({"predicted_gb": [0.0, top], "measured_gb": [limit, limit],
                                   "line": f"budget {limit:g} GB"}))  # fmt: skip
    guide = alt.Chart(pd.concat(lines)).mark_line(strokeDash=[4, 4], color="gray")
    guide = guide.encode(x="predicted_gb:Q", y="measured_gb:Q", detail="line:N")
    dots = (
        alt.Chart(points)
        .mark_circle(size=80)
        .encode(
            x=alt.X("predicted_gb:Q", title=f"predicted GB: {what}"),
            y=alt.Y("measured_gb:Q", title="measured GB"),
            color=alt.Color("method:N"),
            tooltip=[
                "run:N",
                alt.Tooltip("predicted_gb:Q", format=".2f"),
                alt.Tooltip("measured_gb:Q", format=".2f"),
            ],  # fmt: skip
        )
    )
    return alt.layer(guide, dots)


checks = ui.query(data.memory_checks)
if checks.empty:
    st.info("No finished run has both a prediction and a measurement yet.")
else:
    errors = checks["error_pct"].dropna().abs()
    verdicts = checks["t4_verdict_right"].dropna()
    summary = f"{len(errors)} comparisons: mean |error| {errors.mean():.2f}%, " + (
        f"{int((errors <= 10).sum())} within ±10%."
    )
    if len(verdicts):
        summary += f" T4 (15 GB) verdicts right: {int(verdicts.sum())} of {len(verdicts)}."
    else:
        summary += (
            " No GPU runs here: CPU rows compare the exact terms (weights, gradients, optimizer "
            "state); activations and the peak need a CUDA machine."
        )
    st.caption(summary)
    st.altair_chart(predicted_vs_measured(checks), width="stretch")
    shown = checks.round({"predicted_mb": 0, "measured_mb": 0, "error_pct": 1})
    st.dataframe(shown, hide_index=True, width="stretch")

systems = records[records["systems_only"].fillna(False).astype(bool)]
if not systems.empty:
    st.markdown("#### Systems-only runs (random weights: memory and speed, never ranked)")
    st.dataframe(systems[["run_id", "weights_dtype", "predicted_cuda_bytes"]], hide_index=True)
adjusted = records[records["budget_adjustments"].fillna("null") != "null"]
if not adjusted.empty:
    st.markdown("#### Runs adjusted to fit the budget")
    st.dataframe(adjusted[["run_id", "budget_adjustments"]], hide_index=True, width="stretch")
