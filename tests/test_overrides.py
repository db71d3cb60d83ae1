"""`--set KEY=VALUE` (run/plan/ls/tune/lock) and `ftbench show --format`."""

from __future__ import annotations

import csv
import io
import json

from helpers import suite_dict

from harness.cli import main as cli


def _ls(capsys, *args: str) -> dict[str, str]:
    capsys.readouterr()
    assert cli(["ls", *args]) == 0
    return {line.split()[1]: line.split()[0] for line in capsys.readouterr().out.splitlines()}


def test_set_makes_its_own_run_ids_and_the_lock_records_it(tmp_path, write_suite, capsys):
    path = str(write_suite(suite_dict()))
    plain = _ls(capsys, path)
    changed = _ls(capsys, path, "--set", "training.max_steps=3", "--set", "methods.lora.params.r=4")
    assert plain.keys() == changed.keys() and plain != changed

    lock = tmp_path / "x.lock.json"
    assert cli(["lock", path, "-o", str(lock), "--set", "training.max_steps=3",
                "--set", "methods.lora.params.r=4"]) == 0  # fmt: skip
    locked = json.loads(lock.read_text())
    assert locked["suite"]["overrides"] == ["training.max_steps=3", "methods.lora.params.r=4"]
    assert {r["label"]: r["run_id"] for r in locked["runs"]} == changed
    assert locked["runs"][0]["spec"]["training"]["max_steps"] == 3
    assert cli(["ls", str(lock), "--set", "training.max_steps=4"]) == 2
    assert "--set does not apply to a lock file" in capsys.readouterr().err


def test_a_bad_set_is_one_clear_error(write_suite, capsys):
    path = str(write_suite(suite_dict()))
    assert cli(["ls", path, "--set", "training.max_steps"]) == 2
    assert "write KEY=VALUE" in capsys.readouterr().err
    assert cli(["ls", path, "--set", "training.max_steps=many"]) == 2
    assert "training.max_steps" in capsys.readouterr().err
    assert cli(["ls", path, "--set", "grid.methods.lora=1"]) == 2
    assert "grid.methods is a list, not a mapping" in capsys.readouterr().err
    assert cli(["ls", path, "--set", "training.max_stepz=3"]) == 2
    assert "training.max_stepz: unknown key" in capsys.readouterr().err


def test_show_formats(tmp_path, write_suite, capsys):
    path = str(write_suite(suite_dict()))
    results = str(tmp_path / "r")
    assert cli(["--results", results, "run", path, "--set", "training.max_steps=1"]) == 0
    capsys.readouterr()
    assert cli(["--results", results, "show", path, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["entry"], r["metric"], r["n"]) for r in rows] == [("lora", "accuracy", 1)]
    assert 0.0 <= rows[0]["mean"] <= 1.0
    assert cli(["--results", results, "show", path, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(table[0]["mean"]) == rows[0]["mean"]
    assert cli(["--results", results, "show", path, "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| dataset | model | metric |") and lines[1].startswith("|---|")
    assert len(lines) == 3
