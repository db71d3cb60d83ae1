"""Run detail: config, provenance, status and traceback, curves, memory and timings of one run."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, tables, ui

STATUS_ICON = {
    "ok": "✅",
    "failed": "❌",
    "oom": "💥",
    "killed": "🛑",
    "diverged": "📉",
    "timeout": "⏱️",
    "skipped": "⏭️",
}


def _num(value: object, fmt: str, unit: str = "") -> str:
    return "–" if value is None or pd.isna(value) else f"{format(value, fmt)}{unit}"


st.title("Run detail")
ui.require_runs()
runs = ui.filter_box(
    ui.query(data.runs_index),
    key="run_filter",
    help_fields="suite, method, model, dataset, status, run",
)
if runs.empty:
    st.info("No runs match the filter.")
    st.stop()

labels = {r.run_id: ui.run_label(r) for r in runs.itertuples()}
wanted = st.query_params.get("run")
if wanted is not None and wanted not in labels:
    st.warning(f"No run `{wanted}` in this database (or it is filtered out); pick one below.")
ids = list(labels)
run_id = st.selectbox(
    "Run",
    ids,
    index=ids.index(wanted) if wanted in labels else 0,
    format_func=labels.__getitem__,
    key="run_pick",
)

detail = ui.query(data.run_detail, run_id)
if detail is None:  # deleted between listing and reading
    st.warning(f"Run `{run_id}` is gone from the database; reload the page.")
    st.stop()
run = detail["run"]
status = run["status"]
st.subheader(f"{STATUS_ICON.get(status, '')} {status} · {run['method_key']} on {run['model_key']}")
st.caption(
    f"run_id `{run_id}` · suite {run['suite']} v{run['suite_version']} · dataset "
    f"{run['dataset_key']} ({run['task']}) · seed {run['seed']} · method {run['method']}"
)
if status != "ok":
    st.error(f"**{status}**: {run.get('reason') or 'no reason recorded'}")
if run.get("traceback"):
    with st.expander("Traceback", expanded=status != "ok"):
        st.code(run["traceback"], language="text")

st.markdown("#### Metrics")
metrics = detail["metrics"]
if metrics.empty:
    st.info(
        "This run recorded no metrics"
        + (
            f" (it ended `{status}`)."
            if status != "ok"
            else " (an ok run without metrics: check its worker.log)."
        )
    )
else:
    st.dataframe(metrics, hide_index=True, width="content")

st.markdown("#### Memory and time")
cols = st.columns(6)
peak = run.get("peak_mem_bytes")
cols[0].metric("Peak memory", _num(None if pd.isna(peak) else peak / tables.GIB, ".2f", " GiB"))
cols[0].caption(run.get("peak_mem_kind") or "kind unknown")
cols[1].metric("Train", _num(run.get("train_s"), ".1f", " s"))
cols[2].metric("Eval", _num(run.get("eval_s"), ".1f", " s"))
cols[3].metric("Total", _num(run.get("total_s"), ".1f", " s"))
cols[4].metric(
    "Tokens/s",
    _num(run.get("steady_tokens_per_s"), ".0f"),
    help="steady state, after the warm-up steps (the run's step_s curve shows every step)",
)
cols[5].metric("Trainable", _num(run.get("trainable_pct"), ".4f", " %"))
cols[5].caption(
    f"{_num(run.get('trainable_params'), ',.0f')} of {_num(run.get('total_params'), ',.0f')}"
)
extra = {
    "cuda_max_allocated": run.get("cuda_max_allocated"),
    "cuda_max_reserved": run.get("cuda_max_reserved"),
    "load_s": run.get("load_s"),
    "train_tokens": run.get("train_tokens"),
    "artifact_bytes": run.get("artifact_bytes"),
    "precision_effective": run.get("precision_effective"),
    "started_at": run.get("started_at"),
    "finished_at": run.get("finished_at"),
}
st.caption(
    " · ".join(
        f"{k}: {format(v, '.4g') if isinstance(v, float) else v}"
        for k, v in extra.items()
        if v is not None and not pd.isna(v)
    )
)

st.markdown("#### Curves")
curves = detail["curves"]
if curves.empty:
    st.info("No training curve recorded for this run.")
else:
    # One chart per curve (own y scale), three to a row, each as wide as its column.
    names = sorted(curves["name"].unique(), key=lambda n: (n != "loss", n))
    for start in range(0, len(names), 3):
        for col, name in zip(st.columns(3), names[start : start + 3], strict=False):
            one = curves[curves["name"] == name]
            col.altair_chart(
                alt.Chart(one, title=name)
                .mark_line(point=len(one) <= 100)
                .encode(
                    x=alt.X("step:Q"),
                    y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
                    tooltip=["step:Q", alt.Tooltip("value:Q", title=name, format=".4g")],
                )
                .properties(height=200),
                width="stretch",
            )

left, right = st.columns(2)
with left:
    st.markdown("#### Resolved config")
    st.json(run.get("config") or {}, expanded=2)
    notes = run.get("notes")
    if notes:
        st.markdown("#### Notes")
        st.json(notes, expanded=1)
with right:
    st.markdown("#### Provenance")
    if detail["provenance"] is None:
        st.info("No provenance recorded for this run (it ended before the model was loaded).")
    else:
        st.json({k: v for k, v in detail["provenance"].items() if k != "run_id"}, expanded=1)
    st.markdown("#### Artifacts")
    result_path = run.get("result_path")
    if result_path:
        folder = Path(result_path).parent
        here = "" if folder.is_dir() else " (not on this machine)"
        st.markdown(
            f"result: `{result_path}`  \nrun folder (weights, worker.log): `{folder}`{here}"
        )
    else:
        st.info("No result path recorded.")
