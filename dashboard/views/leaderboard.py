"""Leaderboard: one row per method for a suite / dataset / model / metric."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from dashboard import data, tables, ui

st.title("Leaderboard")
ui.require_runs()
suite = ui.pick_suite()
dataset, model, metric, hib = ui.pick_metric(suite, key="lb")
scores = ui.filter_box(ui.query(data.run_scores, suite, dataset, metric, model), key="lb_filter")

st.caption(
    f"Suite **{suite}** · dataset **{dataset}** · model **{model}** · test **{metric}** "
    f"({ui.direction_arrow(hib)}) · mean over seeds with a 95% bootstrap CI"
)
if scores.empty:
    st.info("No runs match the filter.")
    st.stop()

board = tables.leaderboard(scores, hib)
ci = [
    "–" if pd.isna(lo) else f"{lo:.4f} – {hi:.4f}"
    for lo, hi in zip(board["ci_low"], board["ci_high"], strict=True)
]
st.dataframe(
    board.assign(ci=ci),
    hide_index=True,
    width="stretch",
    placeholder="–",
    column_order=[
        "rank",
        "method",
        "mean",
        "std",
        "n",
        "ci",
        "vs_leader",
        "trainable_pct",
        "peak_mem_gib",
        "t4_fit",
        "train_s",
        "tokens_per_s",
        "runs",
        "not_ok",
        "mem_kind",
    ],  # fmt: skip
    column_config={
        "rank": st.column_config.NumberColumn("#", width="small"),
        "mean": st.column_config.NumberColumn(metric, format="%.4f"),
        "std": st.column_config.NumberColumn("std", format="%.4f"),
        "n": st.column_config.NumberColumn("n seeds", help="ok runs with a value of the metric"),
        "ci": st.column_config.TextColumn("95% CI", help="bootstrap over seeds (2000 resamples)"),
        "vs_leader": st.column_config.TextColumn(
            "vs leader", help="tied: the 95% CI overlaps the leader's; no CI: fewer than 3 seeds"
        ),
        "trainable_pct": st.column_config.NumberColumn("trainable %", format="%.4f"),
        "peak_mem_gib": st.column_config.NumberColumn("peak mem GiB", format="%.2f"),
        "mem_kind": st.column_config.TextColumn("mem kind"),
        "t4_fit": st.column_config.TextColumn(
            "T4 fit", help="CUDA peak ≤ 15 GiB; a CPU RSS peak says nothing about a T4"
        ),
        "train_s": st.column_config.NumberColumn("train s", format="%.1f"),
        "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.0f"),
        "runs": st.column_config.NumberColumn("runs", help="all runs, whatever their status"),
        "not_ok": st.column_config.TextColumn("not ok", help="runs by status, other than ok"),
    },
)

notes = []
if (board["n"].between(1, 2)).any():
    notes.append(
        "Fewer than 3 seeds: no confidence interval and no tie verdict (`no CI`); run more "
        "seeds for a real interval."
    )
if board["mem_kind"].str.contains("cpu_peak_rss").any():
    notes.append(
        "Peak memory of CPU runs is the run process's peak RSS, not GPU memory: T4 fit is n/a."
    )
missing = int(board["ok_without_metric"].sum())
if missing:
    notes.append(f"{missing} ok run(s) recorded no `{metric}` and are left out of the mean.")
not_ok = tables.status_counts(scores["status"])
if not_ok:
    notes.append(f"Runs not ok: {not_ok} (see Run detail for reasons).")
for note in notes:
    st.caption(note)

stem = f"leaderboard_{suite}_{dataset}_{model}_{metric}"
parquet = io.BytesIO()
board.to_parquet(parquet, index=False)
left, right, _ = st.columns([1, 1, 4])
left.download_button(
    "Download CSV",
    board.to_csv(index=False),
    file_name=f"{stem}.csv",
    mime="text/csv",
    on_click="ignore",
)
right.download_button(
    "Download Parquet",
    parquet.getvalue(),
    file_name=f"{stem}.parquet",
    mime="application/vnd.apache.parquet",
    on_click="ignore",
)
