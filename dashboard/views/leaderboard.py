"""Leaderboard: the store's leaderboard (the one `ftbench show` prints) of a suite / dataset /
model / metric, formatted; a filter narrows the runs it is computed from."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from dashboard import data, tables, ui
from harness.show.leaderboard import flags
from harness.store.stats import N_RESAMPLES

st.title("Leaderboard")
ui.require_runs()
suite = ui.pick_suite()
dataset, model, metric, hib = ui.pick_metric(suite, key="lb")
clauses = ui.filter_clauses(key="lb_filter")
board = ui.query(data.leaderboard, suite, dataset, model, metric, clauses)

st.caption(
    f"Suite **{suite}** · dataset **{dataset}** · model **{model}** · test **{metric}** "
    f"({ui.direction_arrow(hib)}) · mean over seeds with a 95% bootstrap CI"
)
if board.empty:
    st.info("No runs match the filter.")
    st.stop()

ci = [
    "–" if pd.isna(lo) else f"{lo:.4f} – {hi:.4f}"
    for lo, hi in zip(board["ci_low"], board["ci_high"], strict=True)
]
shown = board.assign(
    ci=ci,
    flags=[flags(r).strip() for r in board.itertuples()],
    budget_fit=[
        tables.budget_fit_text(r.budget_fit, r.mem_kind, r.budget_gb) for r in board.itertuples()
    ],
)
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    placeholder="–",
    column_order=[
        "rank",
        "entry",
        "flags",
        "mean",
        "std",
        "n",
        "ci",
        "vs_leader",
        "trimmed_mean",
        "trainable_pct",
        "peak_mem_gib",
        "budget_fit",
        "train_s",
        "tokens_per_s",
        "speed_shared",
        "runs",
        "not_ok",
        "mem_kind",
    ],  # fmt: skip
    column_config={
        "rank": st.column_config.NumberColumn("#", width="small"),
        "entry": st.column_config.TextColumn("method"),
        "flags": st.column_config.TextColumn(
            "flags",
            help="⚑ a run fails the provenance gate or a data check; ✗ invalid cell "
            "(more than one diverged seed), ranked last",
        ),
        "mean": st.column_config.NumberColumn(metric, format="%.4f"),
        "std": st.column_config.NumberColumn("std", format="%.4f"),
        "n": st.column_config.NumberColumn("n seeds", help="ok runs with a value of the metric"),
        "ci": st.column_config.TextColumn(
            "95% CI", help=f"bootstrap of the mean over seeds ({N_RESAMPLES:,} resamples; 3+ seeds)"
        ),
        "vs_leader": st.column_config.TextColumn(
            "vs leader", help="tied: the 95% CI overlaps the leader's; no CI: fewer than 3 seeds"
        ),
        "trimmed_mean": st.column_config.NumberColumn(
            "trimmed", format="%.4f", help="mean without the best and worst seed (5+ seeds)"
        ),
        "trainable_pct": st.column_config.NumberColumn("trainable %", format="%.4f"),
        "peak_mem_gib": st.column_config.NumberColumn("peak mem GiB", format="%.2f"),
        "mem_kind": st.column_config.TextColumn("mem kind"),
        "budget_fit": st.column_config.TextColumn(
            "fits budget",
            help="CUDA peak against the suite's budget (a T4's 15 GB when it has "
            "none); a CPU RSS peak says nothing about a GPU",
        ),
        "train_s": st.column_config.NumberColumn("train s", format="%.1f"),
        "tokens_per_s": st.column_config.NumberColumn(
            "tokens/s", format="%.0f", help="steady state: after the warm-up steps"
        ),
        "samples_per_s": st.column_config.NumberColumn(
            "samples/s", format="%.1f", help="steady state: after the warm-up steps"
        ),
        "speed_shared": st.column_config.CheckboxColumn(
            "shared GPU",
            help="runs packed with others on one GPU (Ray, gpus_per_run < 1): memory verdicts "
            "hold under the cap, speed is not comparable",
        ),
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
        "Peak memory of CPU runs is the run process's peak RSS, not GPU memory: it says nothing "
        "about fitting a GPU budget."
    )
if board["speed_shared"].any():
    notes.append(
        "Speed of rows marked *shared GPU* is not comparable: their runs shared a GPU with "
        "other runs (Ray executor, gpus_per_run < 1)."
    )
missing = int(board["ok_without_metric"].sum())
if missing:
    notes.append(f"{missing} ok run(s) recorded no `{metric}` and are left out of the mean.")
not_ok = [f"{r.entry}: {r.not_ok}" for r in board.itertuples() if r.not_ok]
if not_ok:
    notes.append(f"Runs not ok: {'; '.join(not_ok)} (see Run detail for reasons).")
for r in board.itertuples():
    if r.flagged:
        notes.append(f"⚑ {r.entry}: {r.flagged} of {r.n} runs flagged: {r.issues}")
    if not r.valid:
        notes.append(f"✗ {r.entry}: invalid, {r.diverged} seeds diverged (more than 1)")
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
