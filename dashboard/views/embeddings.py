"""Embeddings: retrieval scores per embedding width (table `embedding_metrics`), base vs tuned.

Pick a width: every method of the chosen suite/dataset/model is compared there, with the base
model's score, the tuned score, the gain, and the share of the full-width score kept.
"""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, ui

rows = ui.empty_state_page(
    "embedding_metrics",
    "Embeddings",
    "No embedding metrics yet — run a suite with a `retrieval` task (e.g. `ftbench run "
    "suites/embed_smoke.yaml`); its per-dimension metrics will show up here.",
    show_table=False,
)
if rows is None:
    st.stop()
table = ui.query(data.embedding_table)
if table is None or table.empty:
    st.info("No finished run has test-split embedding metrics yet.")
    st.stop()

suite = ui.url_select("Suite", sorted(table["suite"].unique()), "emb_suite", "suite")
table = table[table["suite"] == suite]
dataset = ui.url_select("Dataset", sorted(table["dataset"].unique()), "emb_dataset", "dataset")
table = table[table["dataset"] == dataset]
model = ui.url_select("Model", sorted(table["model"].unique()), "emb_model", "model")
table = table[table["model"] == model]
metrics = sorted(table["metric"].unique(), key=lambda m: (m != "ndcg@10", m))
metric = ui.url_select("Metric", metrics, "emb_metric", "metric")
table = table[table["metric"] == metric]
dims = sorted(table["dim"].unique().tolist(), reverse=True)
dim = ui.url_select("Dimension", dims, "emb_dim", "dim")

at_dim = table[table["dim"] == dim].sort_values("tuned", ascending=False, na_position="last")
full = max(dims)
st.caption(
    f"**{metric}** on the test split at width **{dim}** of {full} (mean over seeds). `base` is "
    "the untrained model scored in the same run; `share` is the score kept relative to the "
    "same model state at full width. The untrained `base` method has no tuned score."
)
st.dataframe(
    at_dim[["method", "base", "tuned", "delta", "base_share_of_full", "tuned_share_of_full", "n"]]
    .rename(columns={"base_share_of_full": "base share", "tuned_share_of_full": "tuned share"})
    .style.format(precision=4, na_rep="—"),
    hide_index=True,
    width="stretch",
)

st.markdown(f"#### {metric} by width")
curves = table.melt(
    id_vars=["method", "dim"], value_vars=["base", "tuned"], var_name="state", value_name="score"
).dropna(subset=["score"])
st.altair_chart(
    alt.Chart(curves)
    .mark_line(point=True)
    .encode(
        x=alt.X("dim:Q", title="embedding width", scale=alt.Scale(type="log", base=2)),
        y=alt.Y("score:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("method:N"),
        strokeDash=alt.StrokeDash("state:N"),
        tooltip=["method:N", "state:N", "dim:Q", alt.Tooltip("score:Q", format=".4f")],
    )
    .properties(height=320),
    width="stretch",
)
