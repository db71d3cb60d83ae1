"""Entry point: `streamlit run dashboard/app.py -- --db results/ftbench.duckdb`."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts only dashboard/ on sys.path; the pages import the `dashboard` package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="ftbench", page_icon="🏁", layout="wide")

PAGES = [
    st.Page("views/leaderboard.py", title="Leaderboard", icon="🏆", default=True),
    st.Page("views/pareto.py", title="Pareto", icon="📈", url_path="pareto"),
    st.Page("views/run_detail.py", title="Run detail", icon="🔎", url_path="run"),
    st.Page("views/compare.py", title="Compare", icon="⚖️", url_path="compare"),
    st.Page("views/tuning.py", title="Tuning", icon="🎛️", url_path="tuning"),
    st.Page("views/embeddings.py", title="Embeddings", icon="🧭", url_path="embeddings"),
    st.Page("views/frontier.py", title="Alignment frontier", icon="🎯", url_path="frontier"),
    st.Page("views/reproducibility.py", title="Reproducibility", icon="🔁", url_path="repro"),
    st.Page("views/memory.py", title="Memory", icon="🧮", url_path="memory"),
]

page = st.navigation(PAGES)
st.sidebar.caption(f"Database: `{ui.db_path()}`")
page.run()
