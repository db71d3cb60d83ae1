"""Memory: the estimator's predictions against what runs measured (`ftbench memcheck`)."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui

records = ui.empty_state_page(
    "memory",
    "Memory",
    "No memory records yet — every run records its predicted and measured memory; run a suite "
    "(`ftbench run <suite>`), and `ftbench plan <suite>` shows predictions without running.",
    show_table=False,
)
if records is None:
    st.stop()

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
    st.dataframe(checks, hide_index=True, width="stretch")

systems = records[records["systems_only"].fillna(False).astype(bool)]
if not systems.empty:
    st.markdown("#### Systems-only runs (random weights: memory and speed, never ranked)")
    st.dataframe(systems[["run_id", "weights_dtype", "predicted_cuda_bytes"]], hide_index=True)
adjusted = records[records["budget_adjustments"].fillna("null") != "null"]
if not adjusted.empty:
    st.markdown("#### Runs adjusted to fit the budget")
    st.dataframe(adjusted[["run_id", "budget_adjustments"]], hide_index=True, width="stretch")
