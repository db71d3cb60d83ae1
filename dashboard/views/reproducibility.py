"""Reproducibility: re-run checks (table `repro_checks`, written by `ftbench repro`)."""

from __future__ import annotations

import streamlit as st

from dashboard import ui

checks = ui.empty_state_page(
    "repro_checks",
    "Reproducibility",
    "No reproducibility checks yet — run `ftbench repro <run_id>` or `ftbench repro --suite "
    "<suite>` to re-run finished runs from their stored spec and compare; the checks will show "
    "up here.",
)
if checks is not None and "verdict" in checks.columns:
    counts = checks["verdict"].fillna("unknown").value_counts()
    st.caption("Verdicts: " + " · ".join(f"{v} {n}" for v, n in sorted(counts.items())))
