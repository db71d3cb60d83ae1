"""The Ray executor on a real local Ray cluster (2 CPUs): same rows as the local executor, a
killed Ray worker ends as a retry and then a recorded failure, parallel tuning keeps its budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import duckdb
import pytest
from helpers import suite_dict

from harness.plan.plan import make_plan
from harness.runs import runlock
from harness.runs.executors import ExecutorConfig, build
from harness.runs.executors.ray import PLACEMENT_FILE
from harness.runs.runner import run_plan

ray = pytest.importorskip("ray", reason="ray is not installed (`make setup` installs it)")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module, shut down (with its processes) afterwards."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _ray(**config):
    return build(ExecutorConfig(kind="ray", **config))


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_tiny_suite_on_ray_gives_the_rows_of_the_local_executor(cluster, tmp_path, write_suite):
    data = suite_dict(seeds=[0, 1], methods={"lora": {}, "explode": {}})
    data["grid"]["methods"] = ["lora", "explode"]
    data["determinism"] = {"strict": True}
    plan = make_plan(write_suite(data))
    run_plan(plan, results_dir=tmp_path / "local")
    shared = tmp_path / "artifacts"  # a folder every node can write (an fsspec URL in general)
    report = run_plan(
        plan, results_dir=tmp_path / "ray", executor=_ray(parallel=2, artifacts=str(shared))
    )
    assert len(report.executed) == 4
    query = "SELECT run_id, status, reason FROM runs ORDER BY run_id"
    local, on_ray = (_rows(tmp_path / d / "ftbench.duckdb", query) for d in ("local", "ray"))
    assert [r[:2] for r in on_ray] == [r[:2] for r in local]
    assert {r[1] for r in on_ray} == {"ok", "failed"}
    metrics = "SELECT run_id, split, name, value FROM metrics ORDER BY ALL"
    ray_metrics = _rows(tmp_path / "ray" / "ftbench.duckdb", metrics)
    assert ray_metrics and ray_metrics == _rows(tmp_path / "local" / "ftbench.duckdb", metrics)
    # where each run ran is recorded with it
    notes = _rows(tmp_path / "ray" / "ftbench.duckdb", "SELECT notes FROM runs")
    placements = [json.loads(n)["executor"] for (n,) in notes]
    assert all(p["kind"] == "ray" and p["node_id"] and p["hostname"] for p in placements)
    # and each run folder was copied to the artifact store
    assert sorted(p["artifacts"] for p in placements) == sorted(
        f"{shared}/{run_id}" for run_id, *_ in on_ray
    )
    assert all((shared / run_id / "worker.log").is_file() for run_id, *_ in on_ray)


def test_an_executor_block_is_optional_and_never_part_of_a_run_id(cluster, write_suite):
    from harness.runs.executors.local import LocalSubprocessExecutor
    from harness.runs.executors.ray import RayExecutor
    from harness.runs.runner import default_executor
    from harness.suite.suite_file import load_suite

    plain = suite_dict(seeds=[0, 1])
    block = {**plain, "executor": {"kind": "ray", "parallel": 2, "gpus_per_run": 0.2}}
    ids = [
        [s.run_id for s in make_plan(write_suite(d, f"{i}.yaml")).specs]
        for i, d in enumerate([plain, block])
    ]
    assert ids[0] == ids[1]
    assert load_suite(write_suite(block, "b.yaml")).executor.gpus_per_run == 0.2
    assert "executor" not in load_suite(write_suite(plain, "p.yaml")).model_dump()
    # the block is what `ftbench run` and harness.run use when no executor is given
    chosen = default_executor(make_plan(write_suite(block, "b.yaml")))
    assert isinstance(chosen, RayExecutor) and chosen.parallel == 2
    assert isinstance(
        default_executor(make_plan(write_suite(plain, "p.yaml"))), LocalSubprocessExecutor
    )


def _placement(run_dir, not_pid=None, timeout=60.0):
    """The Ray worker pid running run_dir (another one than not_pid), once its run holds the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = json.loads((run_dir / PLACEMENT_FILE).read_text())["worker_pid"]
        except (OSError, ValueError):
            pid = None
        if pid and pid != not_pid and runlock.holder(run_dir):
            return pid
        time.sleep(0.2)
    raise AssertionError(f"no run started in {run_dir} within {timeout} s")


def test_a_killed_ray_worker_is_retried_then_recorded_node_lost(cluster, tmp_path, write_suite):
    data = suite_dict(methods={"hang": {"params": {"seconds": 60.0}}, "lora": {}})
    data["grid"]["methods"] = ["hang", "lora"]
    plan = make_plan(write_suite(data))
    results = tmp_path / "r"
    hang = next(r.spec for r in plan.runs if r.spec.method_key == "hang")
    run_dir = results / "runs" / hang.run_id
    out = {}
    runner = threading.Thread(
        target=lambda: out.update(
            report=run_plan(plan, results_dir=results, executor=_ray(parallel=2, max_retries=1))
        )
    )
    runner.start()
    first = _placement(run_dir)
    run_pid = int(runlock.holder(run_dir))
    os.kill(first, signal.SIGKILL)  # the Ray worker: its run process must go with it
    second = _placement(run_dir, not_pid=first)  # Ray's retry took the run's lock
    assert subprocess.run(["kill", "-0", str(run_pid)], capture_output=True).returncode != 0
    os.kill(second, signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    statuses = {r.spec["method_key"]: r for r in out["report"].executed}
    assert statuses["lora"].status == "ok"
    assert statuses["hang"].status == "failed"
    assert statuses["hang"].train_info.reason.startswith("node lost")
    deadline = time.monotonic() + 15  # the run process ends with its worker (a moment later)
    while runlock.holder(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runlock.holder(run_dir) is None  # no orphan run process holds the folder
    rows = _rows(results / "ftbench.duckdb", "SELECT method_key, status FROM runs ORDER BY 1")
    assert rows == [("hang", "failed"), ("lora", "ok")]


def test_tune_parallel_2_ends_with_exactly_the_configured_trials(cluster, tmp_path, write_suite):
    from harness.cli import main as cli

    data = suite_dict(
        methods={
            "m": {
                "method": "lora",
                "search": {"learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2}},
            }
        }
    )
    data["grid"]["methods"] = ["m"]
    data["tune"] = {"trials": 3, "pruner": {"type": "median", "n_startup_trials": 1}}
    data["training"]["max_steps"] = 4
    path = write_suite(data)
    results = tmp_path / "r"
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    import optuna

    # a parallel `ftbench tune` killed with two trials in flight left them RUNNING
    (cell,) = {r.spec.cell for r in make_plan(path).runs}
    name = f"tiny:{cell}"
    killed = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    killed.ask(), killed.ask()
    args = ["--results", str(results), "tune", str(path), "--no-final", "--storage", storage]
    assert cli([*args, "--executor", "ray", "--parallel", "2"]) == 0
    trials = optuna.load_study(study_name=name, storage=storage).trials
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(counted) == 3  # the budget, exactly: in-flight trials were counted before asking
    assert len(interrupted) == 2 and len(trials) == 5  # closed, not counted, not lost
    assert {t.state.name for t in interrupted} == {"FAIL"}
    assert _rows(results / "ftbench.duckdb", "SELECT count(*) FROM trials") == [(5,)]
    # again: the budget is spent, nothing more runs
    assert cli([*args, "--executor", "ray", "--parallel", "2"]) == 0
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 5


def test_runs_packed_on_a_shared_gpu_have_their_speed_marked_not_comparable(tmp_path):
    from dashboard import synthetic
    from harness import store
    from harness.store.result import RunResult

    db = tmp_path / "ftbench.duckdb"
    for method, gpus in (("packed", 0.2), ("whole", 1.0), ("local", None)):
        data = synthetic.result(method=method, metrics={"accuracy": 0.5})
        if gpus is not None:
            data["train_info"]["notes"] = {"executor": {"kind": "ray", "gpus_per_run": gpus}}
        store.ingest(db, RunResult.model_validate(data))
    board = store.leaderboard(db, "synthetic").set_index("method")
    assert board["speed_shared"].to_dict() == {"packed": True, "whole": False, "local": False}
    from harness.show.leaderboard import format_leaderboard

    printed = format_leaderboard(store.leaderboard(db, "synthetic"), "synthetic")
    rows = {line.split()[0]: line for line in printed.splitlines() if line.strip()}
    assert "*" in rows["packed"] and "*" not in rows["whole"] and "*" not in rows["local"]
    assert "speed shared" in printed and "not comparable" in printed


def test_an_upstream_stage_folder_comes_from_the_artifact_store_or_the_fix_is_named(
    tmp_path, write_suite
):
    from harness.runs.executors.ray import _missing_upstream

    (spec,) = make_plan(write_suite(suite_dict())).specs
    spec = spec.model_copy(update={"upstream": {"reward": "stage1"}})
    store = tmp_path / "store" / "stage1"
    store.mkdir(parents=True)
    (store / "result.json").write_text("{}")
    node = tmp_path / "node" / "runs" / spec.run_id
    problem = _missing_upstream(spec, node, None)
    assert "--artifacts" in problem and "shares" in problem and "stage1" in problem
    assert _missing_upstream(spec, node, str(tmp_path / "store")) is None
    assert (node.parent / "stage1" / "result.json").is_file()
    assert not (node.parent / "stage1" / "stage1").exists()  # the contents, not a nested copy


@pytest.mark.parametrize(
    "resources,config,parallel,cpus,gpus",
    [
        ({"CPU": 8.0}, {}, 8, 1.0, 0.0),  # one CPU a run: as many runs as CPUs
        ({"CPU": 8.0}, {"cpus_per_run": 3.0}, 2, 3.0, 0.0),  # whole runs only: 8 // 3
        ({"CPU": 2.0}, {"cpus_per_run": 4.0}, 1, 4.0, 0.0),  # never fewer than one
        ({"CPU": 16.0, "GPU": 2.0}, {}, 2, 1.0, 1.0),  # a GPU a run: one run a GPU
        ({"CPU": 16.0, "GPU": 2.0}, {"gpus_per_run": 0.25}, 8, 1.0, 0.25),  # packed: 4 a GPU
        ({"CPU": 16.0, "GPU": 2.0}, {"gpus_per_run": 0.3}, 6, 1.0, 0.3),  # 2 / 0.3 = 6.67
        ({"CPU": 8.0}, {"gpus_per_run": 0.5}, 8, 1.0, 0.0),  # no GPU in the cluster: CPU runs
        ({"CPU": 16.0, "GPU": 2.0}, {"parallel": 3}, 3, 1.0, 1.0),  # --parallel wins
    ],
)
def test_ray_resource_requests_and_parallel_sizing(
    monkeypatch, resources, config, parallel, cpus, gpus
):
    """What a Ray task asks for and how many run at once, from the cluster's resources (Ray's
    cluster is replaced by its resource table: nothing is started)."""
    from harness.runs.executors import ray as ray_executor

    asked = {}

    class Remote:
        def options(self, **options):
            asked.update(options)
            return self

    monkeypatch.setattr(ray_executor, "connect", lambda address: None)
    monkeypatch.setattr(ray_executor.ray, "cluster_resources", lambda: dict(resources))
    monkeypatch.setattr(ray_executor.ray, "remote", lambda function: Remote())
    executor = _ray(max_retries=2, **config)
    assert executor.parallel == parallel
    assert asked == {
        "num_cpus": cpus, "num_gpus": gpus, "max_retries": 2, "retry_exceptions": False
    }  # fmt: skip
    assert executor.gpus == gpus  # what each run's placement records


def test_the_command_lines_parallel_overrides_the_suites_block(monkeypatch, write_suite):
    import argparse

    from harness.cli import _executor

    seen = []
    monkeypatch.setattr("harness.runs.executors.build", lambda config: seen.append(config))
    block = {**suite_dict(), "executor": {"kind": "ray", "parallel": 2, "cpus_per_run": 2.0}}
    plan = make_plan(write_suite(block), availability=False)
    flags = {"executor": None, "address": None, "artifacts": None}
    _executor(argparse.Namespace(parallel=5, **flags), plan)
    _executor(argparse.Namespace(parallel=None, **flags), plan)
    assert [(c.kind, c.parallel, c.cpus_per_run) for c in seen] == [
        ("ray", 5, 2.0),
        ("ray", 2, 2.0),
    ]
