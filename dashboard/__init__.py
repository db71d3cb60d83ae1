"""Streamlit leaderboard over the ftbench DuckDB results file.

data.py holds all SQL (pure functions of a db path), stats.py the numerics and the filter parser,
tables.py the display frames built from them, ui.py the Streamlit glue; views/ are thin pages.
"""
