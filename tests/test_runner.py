"""The runner end to end on the tiny model: real subprocesses, a real DuckDB file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import duckdb
import pytest
from helpers import suite_dict

from harness.cli import main as cli
from harness.plan.plan import make_plan
from harness.runs.runner import run_plan
from harness.store import SCHEMA_VERSION, leaderboard

ROOT = Path(__file__).resolve().parent.parent


def _run(path, results, **kwargs):
    return run_plan(make_plan(path), results_dir=results, **kwargs)


def _status(report):
    return {r.spec["method_key"]: r.train_info for r in report.executed}


def _count(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One suite holding a crash, a NaN loss, a hang and a healthy run, in that order."""
    import yaml

    tmp = tmp_path_factory.mktemp("faults")
    data = suite_dict(
        seeds=[0, 1],
        methods={
            "explode": {},
            "nan_loss": {},
            "hang": {"params": {"seconds": 120.0}, "training": {"timeout_s": 10}},
            "lora": {},
        },
    )
    data["grid"]["methods"] = ["explode", "nan_loss", "hang", "lora"]
    data["grid"]["exclude"] = [{"method": "hang"}]  # hang gets its own single-seed suite below
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    report = _run(path, tmp / "results")
    return tmp, path, report


def test_an_exception_is_failed_with_its_reason_and_the_suite_goes_on(faulty_run):
    _, _, report = faulty_run
    statuses = [(r.spec["method_key"], r.status) for r in report.executed]
    assert [s for m, s in statuses if m == "explode"] == ["failed", "failed"]
    assert [s for m, s in statuses if m == "lora"] == ["ok", "ok"]
    failed = _status(report)["explode"]
    assert "injected failure for testing" in failed.reason
    assert "RuntimeError" in failed.traceback


def test_a_nan_loss_is_diverged(faulty_run):
    tmp, _, report = faulty_run
    info = _status(report)["nan_loss"]
    assert info.status == "diverged"
    assert "nan" in info.reason.lower()
    assert info.metrics is None  # no sentinel numbers for a run that produced none
    run_id = next(r.run_id for r in report.executed if r.spec["method_key"] == "nan_loss")
    written = json.loads((tmp / "results" / "runs" / run_id / "result.json").read_text())
    assert "metrics" not in written["train_info"]


def test_everything_is_in_duckdb_and_the_leaderboard_reads_back(faulty_run):
    tmp, _, report = faulty_run
    db = tmp / "results" / "ftbench.duckdb"
    assert _count(db, "SELECT count(*) FROM runs") == 6
    assert _count(db, "SELECT count(*) FROM runs WHERE status = 'ok'") == 2
    assert (
        _count(
            db, "SELECT count(*) FROM metrics m JOIN runs r USING (run_id) WHERE r.status <> 'ok'"
        )
        == 0
    )
    assert _count(db, "SELECT count(*) FROM curves") >= 2 * 2
    assert (
        _count(
            db,
            "SELECT count(DISTINCT dataset_fingerprint) FROM provenance WHERE run_id IN (SELECT run_id FROM runs WHERE status='ok')",
        )
        == 1
    )
    assert _count(db, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
    # Per-example correctness of each ok run on the 8 test examples, ids the same for every run
    # (they pair), and the mean of the scores is the stored accuracy.
    assert _count(db, "SELECT count(*) FROM examples WHERE metric = 'accuracy'") == 2
    assert _count(db, "SELECT count(DISTINCT list_sort(ids)) FROM examples") == 1
    assert _count(db, "SELECT max(len(ids)) FROM examples") == 8
    assert (
        _count(
            db,
            "SELECT max(abs(list_avg(e.scores) - m.value)) FROM examples e JOIN metrics m "
            "ON m.run_id = e.run_id AND m.split = e.split AND m.name = e.metric",
        )
        < 1e-12
    )
    board = leaderboard(db, "tiny")
    lora = board[board["method"] == "lora"].iloc[0]
    assert lora["n"] == 2 and 0.0 <= lora["mean"] <= 1.0
    assert lora["std"] >= 0.0
    assert lora["ex_n"] == 8 and lora["ex_low"] <= lora["mean"] <= lora["ex_high"]
    explode = board[board["method"] == "explode"].iloc[0]
    assert explode["n"] == 0 and explode["not_ok"] == "failed 2"


def test_resume_skips_finished_runs_and_writes_no_duplicates(faulty_run):
    tmp, path, _ = faulty_run
    again = _run(path, tmp / "results")
    executed = sorted(r.spec["method_key"] for r in again.executed)
    assert executed == ["explode", "explode"]  # failed runs are retried; ok/diverged are kept
    assert len(again.skipped) == 4
    db = tmp / "results" / "ftbench.duckdb"
    assert _count(db, "SELECT count(*) FROM runs") == 6
    assert (
        _count(
            db,
            "SELECT count(*) FROM (SELECT run_id, split, name FROM metrics GROUP BY ALL HAVING count(*) > 1)",
        )
        == 0
    )


def test_force_reruns(tmp_path, write_suite):
    path = write_suite(suite_dict())
    first = _run(path, tmp_path / "r")
    second = _run(path, tmp_path / "r", force=True)
    assert len(first.executed) == len(second.executed) == 1
    assert _count(tmp_path / "r" / "ftbench.duckdb", "SELECT count(*) FROM runs") == 1


def test_a_hanging_run_times_out(tmp_path, write_suite):
    data = suite_dict(
        methods={"hang": {"params": {"seconds": 120.0}, "training": {"timeout_s": 10}}}
    )
    data["grid"]["methods"] = ["hang"]
    report = _run(write_suite(data), tmp_path / "r")
    (result,) = report.executed
    assert result.status == "timeout"
    assert "timeout_s=10" in result.train_info.reason


def test_cli_run_show_export(tmp_path, write_suite, capsys):
    path = write_suite(suite_dict())
    results = str(tmp_path / "r")
    assert cli(["--results", results, "run", str(path)]) == 0
    assert cli(["--results", results, "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard: suite tiny" in out and "lora" in out
    for fmt in ("csv", "parquet"):
        target = tmp_path / f"export.{fmt}"
        assert (
            cli(
                [
                    "--results",
                    results,
                    "export",
                    "--suite",
                    str(path),
                    "--format",
                    fmt,
                    "--out",
                    str(target),
                ]
            )
            == 0
        )
        assert target.stat().st_size > 0
    import pandas as pd

    frame = pd.read_csv(tmp_path / "export.csv")
    assert set(frame["metric"]) == {
        "accuracy", "macro_f1", "eval_loss", "general_loss_before", "general_loss", "forgetting",
        "f1/negative", "f1/positive",  # sentiment is a classification preset: F1 per class
    }  # fmt: skip


def test_unavailable_hub_model_is_skipped_with_a_reason(tmp_path, write_suite, capsys):
    data = suite_dict(
        models={"tiny": {"asset": "tiny-random-llama"}, "hubby": {"hub": "someone/not-cached"}},
    )
    data["grid"]["models"] = ["tiny", "hubby"]
    path = write_suite(data)
    assert cli(["--results", str(tmp_path / "r"), "run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 runs" in out and "someone/not-cached" in out
    db = tmp_path / "r" / "ftbench.duckdb"
    assert (
        _count(db, "SELECT count(*) FROM runs WHERE status = 'skipped' AND model_key = 'hubby'")
        == 1
    )
    assert _count(db, "SELECT count(*) FROM runs WHERE status = 'ok'") == 1


@pytest.mark.parametrize("command", ["run", "tune"])
def test_a_suite_that_cannot_run_here_says_so_and_runs_nothing(
    tmp_path, capsys, monkeypatch, command
):
    """Said before any memory estimate: planning peft_t4's hundreds of runs takes minutes."""
    from harness.plan.budget import BudgetPlanner

    def no_estimate(*args, **kwargs):
        raise AssertionError("a memory estimate for a suite that cannot run here")

    monkeypatch.setattr(BudgetPlanner, "fit", no_estimate)
    results = tmp_path / "r"
    assert cli(["--results", str(results), command, str(ROOT / "suites" / "peft_t4.yaml")]) == 3
    out = capsys.readouterr().out
    assert "cannot run here (nothing runs)" in out and "HuggingFaceTB/SmolLM2-135M-Instruct" in out
    assert not (results / "ftbench.duckdb").exists()


def test_interrupting_the_runner_leaves_no_orphan_run(tmp_path, write_suite, monkeypatch):
    """The run process, found by the pid launch() returned (on CPU it is forked from a fork
    server, so its command line never names the run folder), is gone with its process group."""
    import os
    import signal

    from harness.runs.executors import local
    from harness.runs.runner import LocalSubprocessExecutor

    data = suite_dict(methods={"hang": {"params": {"seconds": 120.0}}})
    data["grid"]["methods"] = ["hang"]
    (spec,) = make_plan(write_suite(data)).specs
    launched = []

    def recording_launch(*args, **kwargs):
        launched.append(local_launch(*args, **kwargs))
        return launched[-1]

    local_launch = local.launch
    monkeypatch.setattr(local, "launch", recording_launch)
    polls = []

    def interrupt(_progress_path):
        polls.append(1)
        if len(polls) > 4:  # the run process is up (and in its own session) by now
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            LocalSubprocessExecutor(poll_s=0.2).run(spec, tmp_path / "run", on_progress=interrupt)
        (proc,) = launched
        assert not _live_processes(proc.pid), f"run process {proc.pid} outlived its runner"
    finally:  # never leave a hanging run behind, even when the test fails
        for pid in _live_processes(launched[0].pid) if launched else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _live_processes(pid: int) -> list[int]:
    """pid and every process of its process group, unless dead or a zombie (from /proc)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this, state, pgrp = int(stat.parent.name), fields[0], int(fields[2])
        if (this == pid or pgrp == pid) and state not in ("Z", "X"):
            live.append(this)
    return live


def test_a_run_whose_process_outlived_its_runner_is_not_started_twice(tmp_path, write_suite):
    """`kill -9` of a runner leaves its run process alive (a session of its own); a new runner
    records that run as still running instead of starting it again in the same folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from harness.runs import runlock

    data = suite_dict(methods={"hang": {"params": {"seconds": 60.0}}})
    data["grid"]["methods"] = ["hang"]
    path = write_suite(data)
    (spec,) = make_plan(path).specs
    run_dir = tmp_path / "r" / "runs" / spec.run_id
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness", "--results", str(tmp_path / "r"), "run", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while runlock.holder(run_dir) is None:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        runner.send_signal(signal.SIGKILL)  # the runner only: its run lives on
        runner.wait()
        orphan = int(runlock.holder(run_dir))
        os.kill(orphan, 0)  # alive

        report = _run(path, tmp_path / "r")
        (result,) = report.executed
        assert result.status == "skipped" and f"already running in process {orphan}" in (
            result.train_info.reason
        )
        assert not (run_dir / "result.json").exists()  # the folder is the live process's
        assert runlock.holder(run_dir) == str(orphan)  # and it is the only one
    finally:
        holder = runlock.holder(run_dir)
        if holder and holder.isdigit():
            os.killpg(int(holder), signal.SIGKILL)
        runner.kill()
