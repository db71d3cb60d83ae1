"""Leaderboard: the store's leaderboard (the one `ftbench show` prints) of a suite / dataset /
model / metric, formatted; a filter narrows the runs it is computed from."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from dashboard import data, tables, ui
from harness.show.leaderboard import flags, interval_text
from harness.store.stats import SEED_METHOD

st.title("Leaderboard")
ui.require_runs()
suite = ui.pick_suite()
dataset, model, metric, hib = ui.pick_metric(suite, key="lb")
clauses = ui.filter_clauses(key="lb_filter")
board = ui.query(data.leaderboard, suite, dataset, model, metric, clauses)

st.caption(
    f"Suite **{suite}** · dataset **{dataset}** · model **{model}** · test **{metric}** "
    f"({ui.direction_arrow(hib)}) · mean over seeds with a 95% CI ({SEED_METHOD}), a test-set "
    "interval from the per-example scores, and a paired test against the leader (Holm-corrected)"
)
if board.empty:
    st.info("No runs match the filter.")
    st.stop()

shown = board.assign(
    ci=[interval_text(r.ci_low, r.ci_high) for r in board.itertuples()],
    ex_ci=[interval_text(r.ex_low, r.ex_high) for r in board.itertuples()],
    diff_ci=[
        "" if pd.isna(r.diff) else f"{r.diff:+.4f} {interval_text(r.diff_low, r.diff_high)}"
        for r in board.itertuples()
    ],
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
        "ex_ci",
        "vs_leader",
        "diff_ci",
        "p_value",
        "test",
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
            "95% CI seeds",
            help="Student t over the seeds' scores (2+ seeds): the expected score over seeds",
        ),
        "ex_ci": st.column_config.TextColumn(
            "95% CI test set",
            help="from the stored per-example scores (Wilson for correct/incorrect, t otherwise): "
            "test-set sampling only, one seed too; empty for runs without per-example scores",
        ),
        "vs_leader": st.column_config.TextColumn(
            "vs leader",
            help="ahead / tied / behind from the paired test against the leader (Holm-corrected "
            "p < 0.05); no test: nothing pairs (no shared seed, or one seed without per-example "
            "scores)",
        ),
        "diff_ci": st.column_config.TextColumn("Δ vs leader [95%]", help="row − leader"),
        "p_value": st.column_config.NumberColumn(
            "p (Holm)", format="%.2g", help="over the rows of this ranking"
        ),
        "test": st.column_config.TextColumn(
            "test",
            help="paired t over shared seeds (2+); with one seed, McNemar exact (correct or not) "
            "or a paired bootstrap over the examples",
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
if (board["n"] == 1).any():
    notes.append(
        "One seed: no interval over seeds; the test-set interval and a per-example paired test "
        "say nothing about another training seed. Run more seeds for that."
    )
if (board["ex_n"] == 0).all():
    notes.append(
        "No per-example scores stored for these runs (written before schema 5, or a metric that "
        "is not a mean over examples): the test-set interval is empty and one-seed rows get no "
        "test."
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
