"""Experiment trackers: training.report_to / --report-to reach the trainers, never the run_id."""

from __future__ import annotations

import pytest
from helpers import grid_specs, suite_dict

from harness.cli import main as cli


def test_report_to_is_not_part_of_the_run_id():
    plain = suite_dict()
    watched = suite_dict(training={**plain["training"], "report_to": ["tensorboard", "mlflow"]})
    assert [s.run_id for s in grid_specs(watched)] == [s.run_id for s in grid_specs(plain)]


def test_tensorboard_writes_event_files_under_the_run_folder(tmp_path, write_suite):
    pytest.importorskip("tensorboard")
    data = suite_dict()
    data["training"]["report_to"] = ["tensorboard"]
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(write_suite(data))]) == 0
    events = list(results.rglob("events.out.tfevents.*"))
    assert events, f"no tensorboard event files under {results}"
    assert all((e.stat().st_size > 0) for e in events)


def test_the_command_line_overrides_report_to_and_an_unknown_tracker_is_refused(
    tmp_path, write_suite, capsys
):
    path = write_suite(suite_dict())
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(path), "--report-to", "tensorbord"]) == 2
    assert "unknown tracker 'tensorbord'" in capsys.readouterr().err
    assert not list(results.rglob("events.out.tfevents.*"))
    assert cli(["--results", str(results), "run", str(path), "--report-to", "tensorboard"]) == 0
    assert list(results.rglob("events.out.tfevents.*"))
