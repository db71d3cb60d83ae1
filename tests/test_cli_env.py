"""`ftbench --version`, and FTBENCH_DB / FTBENCH_RESULTS as the default of every command."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from harness.cli import build_parser
from harness.cli import main as cli


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ftbench {version('ftbench')}"


@pytest.mark.parametrize("command", [["show", "tiny"], ["run", "tiny"], ["export"], ["memcheck"],
                                     ["repro", "x"], ["dashboard"], ["merge", "a", "--into", "b"]])  # fmt: skip
def test_the_environment_sets_the_defaults_of(command, monkeypatch, tmp_path):
    monkeypatch.setenv("FTBENCH_RESULTS", str(tmp_path / "drive"))
    monkeypatch.setenv("FTBENCH_DB", str(tmp_path / "drive" / "all.duckdb"))
    args = build_parser().parse_args(command)
    assert (args.results, args.db) == (
        str(tmp_path / "drive"),
        str(tmp_path / "drive" / "all.duckdb"),
    )
    args = build_parser().parse_args(["--db", "x.duckdb", *command])  # the flag wins
    assert args.db == "x.duckdb"


def test_show_reads_ftbench_db(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FTBENCH_DB", str(tmp_path / "nowhere.duckdb"))
    assert cli(["show", "tiny"]) == 1
    assert f"no results database at {tmp_path / 'nowhere.duckdb'}" in capsys.readouterr().err


def test_a_missing_extra_names_its_install_command(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "streamlit" else real(name, *a),
    )
    assert cli(["dashboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "`ftbench dashboard` needs streamlit, which is not installed: pip install 'ftbench[dashboard]'"
    )
