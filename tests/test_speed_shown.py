"""`show`, `export` and the dashboard report the steady-state tokens/s (after the warm-up steps),
not the whole run's: the fixture runs' two speeds differ (overall 150, steady 200 tokens/s)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.synthetic import result
from harness import store
from harness.cli import main as cli

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"

OVERALL, STEADY = 150.0, 200.0


@pytest.fixture
def results(tmp_path):
    for seed in (0, 1):
        res = result(suite="speedy", method="lora", seed=seed, metrics={"accuracy": 0.8},
                     tokens_per_s=OVERALL, steady_tokens_per_s=STEADY)  # fmt: skip
        store.ingest(tmp_path / "ftbench.duckdb", res)
    return tmp_path


def test_the_fixture_speeds_differ(results):
    with duckdb.connect(str(results / "ftbench.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT tokens_per_s, steady_tokens_per_s FROM runs").fetchall()
    assert rows == [(OVERALL, STEADY)]


def test_show_prints_the_steady_tokens_per_s(results, capsys):
    assert cli(["--results", str(results), "show", "speedy"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "tokens/s" in line)
    row = next(line for line in out.splitlines() if line.lstrip().startswith("lora"))
    cell = row[header.index("tokens/s") - 4 : header.index("tokens/s") + 12]
    assert "200" in cell and "150" not in row, (header, row)


def test_export_holds_both_speeds_by_name(results):
    out = results / "export.csv"
    assert cli(["--results", str(results), "export", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert set(frame["steady_tokens_per_s"]) == {STEADY}
    assert set(frame["tokens_per_s"]) == {OVERALL}  # the whole run's, under its own name


def test_the_dashboard_leaderboard_shows_the_steady_tokens_per_s(results, monkeypatch):
    monkeypatch.setenv("FTBENCH_DB", str(results / "ftbench.duckdb"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    board = at.dataframe[0].value.set_index("method")
    assert board.loc["lora", "tokens_per_s"] == pytest.approx(STEADY)
    assert board.loc["lora", "samples_per_s"] == pytest.approx(STEADY / 50)
