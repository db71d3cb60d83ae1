"""`ftbench --version`, and FTBENCH_DB / FTBENCH_RESULTS as the default of every command."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent


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


def test_the_shipped_suites_are_found_outside_a_checkout(tmp_path, monkeypatch):
    from harness.suite.suite_file import locate

    monkeypatch.chdir(tmp_path)  # no suites/ here: the suites that came with ftbench
    assert locate("smoke").resolve() == (ROOT / "suites" / "smoke.yaml").resolve()
    (tmp_path / "suites").mkdir()  # a suites/ folder of the working directory comes first
    (tmp_path / "suites" / "smoke.yaml").write_text("name: mine\n")
    assert locate("smoke") == Path("suites/smoke.yaml")
