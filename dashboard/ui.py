"""Streamlit glue shared by the pages: the db path, cached queries, empty states, common pickers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from dashboard import data, stats

T = TypeVar("T")
CACHE_TTL_S = 30  # the db stamp in the key catches new ingests sooner; the TTL bounds memory


def db_path() -> Path:
    return data.resolve_db(sys.argv[1:])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=512)
def _cached(name: str, db: str, stamp: tuple[int, int, int], args: tuple[Any, ...]) -> Any:
    del stamp  # only part of the cache key
    return getattr(data, name)(db, *args)


def query(fn: Callable[..., T], *args: Any) -> T:
    """Call data.<fn>(db, *args) through the cache; a DataError becomes a message and stops the page."""
    db = db_path()
    try:
        return _cached(fn.__name__, str(db), data.db_stamp(db), tuple(args))
    except data.DatabaseMissingError:
        missing_db_message(db)
        st.stop()
    except data.DataError as exc:
        st.error(f"Could not read the results database: {exc}")
        st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def missing_db_message(db: Path) -> None:
    st.info(
        f"No results database at `{db}` yet.\n\n"
        "Run a suite first (`make bench`, or `ftbench run smoke`), or point the dashboard at "
        "another file: `streamlit run dashboard/app.py -- --db PATH` or `FTBENCH_DB=PATH`."
    )


def require_runs() -> dict[str, Any]:
    """Stop the page with a friendly message unless the database holds at least one run."""
    # The store brings an older file up to date and refuses a newer one (shown as an error by
    # query()): there is no version rule here to drift from the store's.
    info = query(data.overview)
    if info["runs"] == 0:
        st.info(
            f"`{db_path()}` holds no runs yet. Run a suite (`ftbench run smoke`); finished runs "
            "appear here as they are ingested."
        )
        st.stop()
    return info


def url_select(
    label: str,
    options: list[Any],
    key: str,
    param: str,
    format_func: Callable[[Any], str] = str,
    unknown_stops: bool = False,
) -> Any:
    """A sidebar selectbox whose choice is mirrored in `?param=` so a URL reopens the same view.

    The URL is read only when the widget is first drawn (afterwards the widget's own state rules,
    or changing the suite would trip over the old dataset in the URL). An unknown value there is
    explained; it stops the page when unknown_stops (the suite), else the first option is shown.
    """
    by_name = {("all" if o is None else str(o)): o for o in options}
    wanted = None if key in st.session_state else st.query_params.get(param)
    if wanted is not None and wanted not in by_name:
        known = ", ".join(f"`{n}`" for n in by_name)
        st.warning(f"Unknown {param} `{wanted}` in the URL. Known here: {known}.")
        if unknown_stops:
            st.stop()
    names = list(by_name)
    index = names.index(wanted) if wanted in by_name else 0
    choice = st.sidebar.selectbox(label, options, index=index, key=key, format_func=format_func)
    st.query_params[param] = "all" if choice is None else str(choice)
    return choice


def pick_suite(key: str = "suite") -> str:
    """Suite selector; `?suite=NAME` in the URL preselects, and an unknown name is explained."""
    suites = query(data.overview)["suites"]
    suite = url_select("Suite", suites["suite"].tolist(), key, "suite", unknown_stops=True)
    row = suites.set_index("suite").loc[suite]
    st.sidebar.caption(f"{row['runs']} runs, {row['ok']} ok")
    return suite


def pick_metric(
    suite: str, key: str, with_all_models: bool = False
) -> tuple[str, str | None, str, bool]:
    """Dataset, model (None = all models when allowed), metric and its direction for a suite."""
    found = query(data.suite_choices, suite)
    scopes, choices = found["scopes"], found["metrics"]
    datasets = sorted(scopes["dataset_key"].unique())
    dataset = url_select("Dataset", datasets, f"{key}_dataset", "dataset")
    models = sorted(scopes.loc[scopes["dataset_key"] == dataset, "model_key"].unique())
    options: list[str | None] = ([None] if with_all_models else []) + models
    model = url_select(
        "Model",
        options,
        f"{key}_model",
        "model",
        format_func=lambda m: "all models" if m is None else m,
    )
    here = choices[choices["dataset_key"] == dataset]
    if model is not None:
        here = here[here["model_key"] == model]
    metrics = (
        here.groupby("metric")
        .agg(higher_is_better=("higher_is_better", "max"), headline=("headline", "max"))
        .sort_values("headline", ascending=False, kind="stable")  # headline first, then by name
    )
    if metrics.empty:
        st.info(
            f"No run of `{suite}` on `{dataset}`"
            + (f" / `{model}`" if model else "")
            + " recorded a test metric yet (every run failed, was skipped, or is still running). "
            "The Run detail page shows why each run ended."
        )
        st.stop()
    metric = url_select(
        "Metric",
        metrics.index.tolist(),
        f"{key}_metric",
        "metric",
        format_func=lambda m: f"{m} {direction_arrow(metrics.loc[m, 'higher_is_better'])}",
    )
    hib = metrics.loc[metric, "higher_is_better"]
    return dataset, model, metric, True if pd.isna(hib) else bool(hib)


def direction_arrow(higher_is_better: Any) -> str:
    if higher_is_better is None or pd.isna(higher_is_better):
        return "(↑ assumed)"
    return "↑ higher is better" if higher_is_better else "↓ lower is better"


def filter_clauses(key: str, help_fields: str = "method, model, status") -> tuple[Any, ...]:
    """Text filter (`method=lora|ia3,model~smol`) parsed by stats.parse_filter; junk is explained
    and ignored (never evaluated). The clauses, for a query that applies them."""
    text = st.sidebar.text_input(
        "Filter",
        key=key,
        placeholder="method=lora|ia3,model~smol",
        help=f"Comma-separated FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT (contains), FIELD!~TEXT; "
        f"alternatives with |. Fields: {help_fields}.",
    )
    try:
        return tuple(stats.parse_filter(text))
    except stats.FilterError as exc:
        st.sidebar.error(f"Filter ignored: {exc}")
        return ()


def filter_box(
    frame: pd.DataFrame, key: str, help_fields: str = "method, model, status"
) -> pd.DataFrame:
    """`frame` narrowed by the filter box (see filter_clauses)."""
    return stats.apply_filter(frame, filter_clauses(key, help_fields))


def run_label(row: Any) -> str:
    seed = "" if pd.isna(row.seed) else f" · seed {row.seed}"
    origin = getattr(row, "origin", "run")
    method = row.method_key if origin == "run" else f"{row.method_key} ({origin})"
    return (
        f"{row.suite} · {row.dataset_key} · {row.model_key} · {method}{seed} "
        f"· {row.status} [{row.run_id}]"
    )


def empty_state_page(
    table: str, title: str, message: str, show_table: bool = True
) -> pd.DataFrame | None:
    """Header plus the table's rows, or `message` (and None) while the table is absent or empty."""
    st.title(title)
    frame = query(data.optional_table, table)
    if frame is None or frame.empty:
        st.info(message)
        st.caption(
            f"Looked for table `{table}` in `{db_path()}`: {'empty' if frame is not None else 'absent'}."
        )
        return None
    st.caption(f"{len(frame)} rows from table `{table}`")
    if show_table:
        st.dataframe(frame, hide_index=True, width="stretch")
    return frame
