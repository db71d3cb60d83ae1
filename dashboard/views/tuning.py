"""Tuning: Optuna trials (table `trials`, written by `ftbench tune`), per study."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, ui

# The columns the study view needs; a `trials` table without them is only listed.
STUDY_COLUMNS = {"study_name", "number", "state", "value"}

trials = ui.empty_state_page(
    "trials",
    "Tuning",
    "No tuning trials yet — run `ftbench tune <suite>` (a suite with a `tune:` block) to search "
    "each method's hyperparameters; its trials will show up here as they finish.",
    show_table=False,
)
if trials is None:
    st.stop()
if not STUDY_COLUMNS.issubset(trials.columns):
    st.dataframe(trials, hide_index=True, width="stretch")
    st.stop()

studies = sorted(trials["study_name"].dropna().unique())
study = st.sidebar.selectbox("Study", studies, key="tune_study")
one = trials[trials["study_name"] == study].sort_values("number")
states = one["state"].value_counts()
st.caption(
    f"Study **{study}**: {len(one)} trials ("
    + ", ".join(f"{n} {state.lower()}" for state, n in states.items())
    + "). Trials are scored on the validation split."
)

done = one[one["value"].notna()]
if done.empty:
    st.info("No trial of this study has a value yet.")
else:
    st.altair_chart(
        alt.Chart(done)
        .mark_circle(size=70)
        .encode(
            x=alt.X("number:Q", title="trial"),
            y=alt.Y("value:Q", title="objective (validation)", scale=alt.Scale(zero=False)),
            color=alt.Color("state:N"),
            tooltip=[c for c in ("number", "state", "value", "params", "status") if c in done],
        )
        .properties(height=320),
        width="stretch",
    )
st.dataframe(one, hide_index=True, width="stretch")

best = ui.query(data.optional_table, "expected_best")
if best is not None and not best.empty and {"n_trials", "expected_best"} <= set(best.columns):
    st.markdown("#### Expected best vs budget")
    keys = [c for c in ("method_key", "model_key", "dataset_key") if c in best.columns]
    best = best.assign(cell=best[keys].astype(str).agg(" · ".join, axis=1) if keys else "all")
    st.altair_chart(
        alt.Chart(best)
        .mark_line(point=True)
        .encode(
            x=alt.X("n_trials:Q", title="trials"),
            y=alt.Y("expected_best:Q", title="expected best", scale=alt.Scale(zero=False)),
            color="cell:N",
            tooltip=["cell:N", "n_trials:Q", alt.Tooltip("expected_best:Q", format=".4f")],
        )
        .properties(height=280),
        width="stretch",
    )
