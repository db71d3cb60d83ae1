"""Faults and hostile input, tried as a user would (issue 29): concurrent runners, killed
workers, a reader holding the database, a full disk, a read-only or corrupt store, bad ids."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from helpers import suite_dict

from harness.cli import main as cli
from harness.plan.plan import make_plan
from harness.runs import runlock
from harness.runs.runner import run_plan
from harness.store import schema
from harness.suite.suite_file import SuiteError, load_suite

ROOT = Path(__file__).resolve().parent.parent


def _probe_suite(write_suite, seeds: list[int], **params) -> Path:
    data = suite_dict(seeds=seeds, methods={"probe": {"params": params}})
    data["grid"]["methods"] = ["probe"]
    return write_suite(data)


def _ftbench(results: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "--results", str(results), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _starts(probe: Path) -> Counter:
    return Counter(line.split()[0] for line in probe.read_text().splitlines())


# --------------------------------------------------------------------------- run processes


def test_a_forked_worker_passes_on_its_busy_exit_code(tmp_path):
    """A worker that finds its run held exits BUSY_EXIT, also through the fork server (it used
    to exit 0, which a second runner reported as `failed`)."""
    from harness.runs.worker import forked

    run_dir = tmp_path / "run"
    held = runlock.claim(run_dir)
    assert held is not None
    context = multiprocessing.get_context("forkserver")
    args = (tmp_path / "spec.json", run_dir, tmp_path / "worker.log", dict(os.environ))
    process = context.Process(target=forked, args=args)
    process.start()
    process.join(120)
    assert process.exitcode == runlock.BUSY_EXIT
    assert "held by another live run process" in (tmp_path / "worker.log").read_text()


def test_two_runners_of_one_suite_run_every_run_once(write_suite, tmp_path):
    path = _probe_suite(write_suite, [0, 1, 2])
    probe, results = tmp_path / "probe.txt", tmp_path / "results"
    env = {**os.environ, "FTBENCH_PROBE_FILE": str(probe)}
    runners = [_ftbench(results, "run", str(path), env=env) for _ in range(2)]
    outputs = [runner.communicate(timeout=500)[0] for runner in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    assert not any("[failed]" in out for out in outputs), outputs
    starts = _starts(probe)
    assert len(starts) == 3 and set(starts.values()) == {1}, starts  # every run, once
    rows = _rows(results / "ftbench.duckdb", "SELECT run_id, status FROM runs")
    assert sorted(r[0] for r in rows) == sorted(starts)  # no row twice, none missing
    assert {r[1] for r in rows} == {"ok"}


def test_a_worker_killed_by_a_signal_is_killed_and_runs_again(write_suite, tmp_path):
    path = _probe_suite(write_suite, [0], first_sleep_s=300.0)
    probe, results = tmp_path / "probe.txt", tmp_path / "results"
    env = {**os.environ, "FTBENCH_PROBE_FILE": str(probe)}
    runner = _ftbench(results, "run", str(path), env=env)
    deadline = time.monotonic() + 120
    while not probe.exists() and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
    run_id, pid = probe.read_text().split()
    os.kill(int(pid), signal.SIGKILL)  # a user's kill -9, not an out-of-memory
    out = runner.communicate(timeout=120)[0]
    assert runner.returncode == 0, out
    assert "[killed]" in out and "[oom]" not in out, out
    result = json.loads((results / "runs" / run_id / "result.json").read_text())
    assert result["train_info"]["status"] == "killed"
    assert "SIGKILL" in result["train_info"]["reason"]

    again = _ftbench(results, "run", str(path), env=env)  # resume runs it again
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert _starts(probe)[run_id] == 2, (probe.read_text(), out)
    assert _rows(results / "ftbench.duckdb", "SELECT status FROM runs") == [("ok",)]


def test_a_run_recorded_killed_is_not_final():
    from harness.store.result import FINAL_STATUSES, STATUSES

    assert "killed" in STATUSES and "killed" not in FINAL_STATUSES


def test_a_signal_death_is_oom_only_with_the_kernels_record(tmp_path, monkeypatch):
    from harness.runs import oom

    log = tmp_path / "kmsg"
    log.write_text("6,1,2,-;Out of memory: Killed process 4242 (python) total-vm:1kB\n")
    assert "Killed process 4242" in oom.kernel_oom_record(4242, str(log))
    assert oom.kernel_oom_record(424, str(log)) is None
    monkeypatch.setattr(oom, "KMSG", str(tmp_path / "unreadable"))
    monkeypatch.setattr(oom.kernel_oom_record, "__defaults__", (str(tmp_path / "unreadable"),))
    status, reason = oom.signal_death(-signal.SIGKILL, 4242)
    assert status == "killed" and "SIGKILL" in reason
    monkeypatch.setattr(oom.kernel_oom_record, "__defaults__", (str(log),))
    assert oom.signal_death(-signal.SIGKILL, 4242)[0] == "oom"


# --------------------------------------------------------------------------- the store

_HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_writer_waits_for_a_reader_holding_the_database(write_suite, tmp_path, monkeypatch):
    """A reader (dashboard, notebook, duckdb CLI) holds the file while a suite runs: the suite
    waits, saying so, and finishes with every row. The hold is 8 s here, not 100 s: the writer
    waits without a bound either way, and says so every WAIT_MESSAGE_S (30 s; 1 s here)."""
    monkeypatch.setattr(schema, "WAIT_MESSAGE_S", 1.0)
    results = tmp_path / "results"
    db = results / "ftbench.duckdb"
    with schema.connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db), "8"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    messages = []
    monkeypatch.setattr(schema, "print", lambda *a, **k: messages.append(a[0]), raising=False)
    started = time.monotonic()
    report = run_plan(make_plan(write_suite(suite_dict(seeds=[0, 1]))), results_dir=results)
    assert time.monotonic() - started > 5
    holder.wait(30)
    assert report.statuses == {"ok": 2}
    assert len(messages) >= 3 and "another process holds it" in messages[0]
    assert _rows(db, "SELECT count(*) FROM runs WHERE status = 'ok'") == [(2,)]


def _last_line(capsys) -> str:
    """The one error line (progress bars may share stderr, so found by its prefix)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = re.findall(r"ftbench: [^\r\n]*", err)
    assert len(lines) == 1, err
    return lines[0]


def test_a_corrupt_database_is_one_line(write_suite, tmp_path, capsys):
    db = tmp_path / "bad.duckdb"
    db.write_bytes(b"this is not a database" * 100)
    code = cli(["--results", str(tmp_path), "--db", str(db), "run", str(write_suite(suite_dict()))])
    assert code == 1
    line = _last_line(capsys)
    assert line.startswith("ftbench: ") and str(db) in line and "another --db" in line


def test_a_read_only_results_folder_is_one_line(write_suite, tmp_path, monkeypatch, capsys):
    """Simulated (tests run as root here, and root writes through chmod 555): every mkdir under
    the results folder fails as on a read-only mount."""
    results = tmp_path / "ro"
    real_mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(results)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert cli(["--results", str(results), "run", str(write_suite(suite_dict()))]) == 1
    line = _last_line(capsys)
    assert line.startswith(f"ftbench: cannot write {results}") and "Read-only" in line


def test_a_full_disk_while_writing_result_json_is_one_line(write_suite, tmp_path, monkeypatch, capsys):  # fmt: skip
    """The runner's write of result.json fails with ENOSPC (simulated): one line, and the run's
    own result (written by its process) is kept for the next `ftbench run` to ingest."""
    results, path = tmp_path / "results", write_suite(suite_dict())
    real_write = pathlib.Path.write_text

    def full(self, *args, **kwargs):
        if self.name == "result.json.tmp":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    assert cli(["--results", str(results), "run", str(path)]) == 1
    line = _last_line(capsys)
    assert line.startswith("ftbench: no space left on the device writing") and "result.json" in line
    monkeypatch.undo()
    (kept,) = (results / "runs").glob("*/result.json")
    assert json.loads(kept.read_text())["train_info"]["status"] == "ok"
    assert not list((results / "runs").glob("*/result.json.tmp"))
    report = run_plan(make_plan(path), results_dir=results)
    assert len(report.skipped) == 1 and report.statuses == {"ok": 1}


# --------------------------------------------------------------------------- user input


@pytest.mark.parametrize("run_id", ["../../../etc/passwd", "0123456789ABCDEF", "abc", "0" * 17])
def test_repro_refuses_what_is_not_a_run_id(tmp_path, capsys, run_id):
    assert cli(["--results", str(tmp_path), "repro", run_id]) == 2
    assert "is not a run_id (16 hex digits" in capsys.readouterr().err
    assert not (tmp_path / "repro").exists()


def test_max_steps_0_on_a_method_that_trains_is_a_suite_error(write_suite):
    data = suite_dict(methods={"lora": {"training": {"max_steps": 0}}, "zero_shot": {}})
    data["grid"]["methods"] = ["lora", "zero_shot"]
    with pytest.raises(SuiteError, match=r"methods.lora: training.max_steps is 0, but 'lora'"):
        load_suite(write_suite(data))
    data["methods"]["zero_shot"] = {"training": {"max_steps": 0}}  # a baseline trains nothing
    data["methods"]["lora"] = {}
    assert load_suite(write_suite(data))


def test_an_empty_method_list_says_so(write_suite):
    data = suite_dict()
    data["grid"]["methods"] = []
    with pytest.raises(SuiteError, match="grid.methods: the list is empty") as err:
        load_suite(write_suite(data))
    assert "excluded" not in str(err.value)


def test_export_of_an_unknown_suite_fails(tmp_path, capsys):
    db = tmp_path / "ftbench.duckdb"
    with schema.connect(db):
        pass
    out = tmp_path / "out.csv"
    assert cli(["--results", str(tmp_path), "export", "--suite", "NOSUCH", "--out", str(out)]) == 2
    assert "no runs of suite 'NOSUCH'" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- the dashboard


def _listening(pid: int) -> set[tuple[str, int]]:
    import psutil

    found = set()
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def test_the_dashboard_listens_on_loopback_only(tmp_path):
    port = 8600 + os.getpid() % 300
    env = {**os.environ, "STREAMLIT_SERVER_HEADLESS": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "--results", str(tmp_path), "dashboard", "--port",
         str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline, bound = time.monotonic() + 90, set()
        while time.monotonic() < deadline and not any(p == port for _, p in bound):
            time.sleep(0.5)
            bound = _listening(server.pid)
        assert (("127.0.0.1", port)) in bound, bound
        assert {ip for ip, _ in bound} == {"127.0.0.1"}, bound  # not *:PORT or ::
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
