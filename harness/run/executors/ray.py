"""The Ray executor: each run is a Ray task that starts the same isolated run process on its node.

Ray does the scheduling (resources, `ray.wait`, retries of tasks whose worker or node died); the
driver (`ftbench run` / `tune`) keeps everything else: the plan, resume, and the only DuckDB
writer. A task returns the run's result as JSON plus where it ran, which the runner records in
the run's `train_info.notes.executor`.

Resources: on a cluster with GPUs a run asks for `gpus_per_run` GPUs (default 1; 0.2 packs five
runs on one card: their memory verdicts hold under the budget's cap, their speed figures are
shared and are marked not comparable), elsewhere `cpus_per_run` CPUs.

Faults: the run process of a task dies with the task's worker (a parent-death signal,
harness/run/worker.py), so Ray's retry (`max_retries`) can take the run's lock; after the last retry
the run is recorded `failed` with the reason "node lost".
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from harness.run import runlock
from harness.run.executors import EXECUTORS, ExecutorConfig
from harness.run.executors.local import LocalSubprocessExecutor
from harness.store.result import RunResult, now
from harness.suite.spec import RunSpec

PLACEMENT_FILE = "executor.json"  # where the current attempt runs (node, worker pid)
REPO_ROOT = str(Path(__file__).resolve().parent.parent.parent)
# A task whose worker process or node went away (not an exception of the run: those are results).
LOST = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.OwnerDiedError,
    ray.exceptions.ObjectLostError,
)
LOCK_WAIT_S = 30.0  # a retried run waits this long for the dead attempt's process to let go


def connect(address: str | None) -> None:
    """Join the cluster at `address` ("auto", "ray://HOST:10001"), or start a local Ray when None.
    Tasks import harness from this checkout's path (nodes need ftbench at the same path or
    installed)."""
    if ray.is_initialized():
        return
    python_path = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))
    ray.init(
        address=address,
        runtime_env={"env_vars": {"PYTHONPATH": python_path}},
        include_dashboard=None if address else False,
        log_to_driver=False,
    )


def _placement(gpus: float) -> dict[str, Any]:
    context = ray.get_runtime_context()
    return {
        "kind": "ray",
        "node_id": context.get_node_id(),
        "hostname": socket.gethostname(),
        "ip": ray.util.get_node_ip_address(),
        "worker_pid": os.getpid(),
        "gpus_per_run": gpus or None,
    }


def _wait_for_lock(run_dir: Path) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while runlock.holder(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)


def _missing_upstream(spec: RunSpec, run_dir: Path, artifacts: str | None) -> str | None:
    """Bring upstream run folders next to this one (from the artifact store), or say which one
    this node lacks and how to fix it."""
    for role, run_id in (spec.upstream or {}).items():
        folder = run_dir.parent / run_id
        if (folder / "result.json").is_file():
            continue
        if artifacts:
            import fsspec

            fs, root = fsspec.core.url_to_fs(artifacts)
            # trailing slashes: the folder's contents, never a nested copy of the folder
            fs.get(f"{root}/{run_id}/", f"{folder}/", recursive=True)
            continue
        return (
            f"the upstream {role} run folder {folder} is not on node {socket.gethostname()}: give "
            f"`--results` a folder every node shares, or `--artifacts URL` to move run folders"
        )
    return None


def _upload(run_dir: Path, artifacts: str) -> str:
    import fsspec

    fs, root = fsspec.core.url_to_fs(artifacts)
    target = f"{root}/{run_dir.name}"
    fs.put(f"{run_dir}/", f"{target}/", recursive=True)  # contents, not a nested copy
    return f"{artifacts.rstrip('/')}/{run_dir.name}"


def run_task(spec_json: str, run_dir: str, gpus: float, artifacts: str | None) -> dict[str, Any]:
    """Body of the Ray task (module-level, so it can be called without Ray in tests)."""
    spec = RunSpec.model_validate_json(spec_json)
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    where = _placement(gpus)
    (folder / PLACEMENT_FILE).write_text(json.dumps(where))
    problem = _missing_upstream(spec, folder, artifacts)
    if problem:
        result = RunResult.without_run(spec, "skipped", reason=problem, started_at=now())
        return {"result": result.to_json(), "where": where}
    _wait_for_lock(folder)
    try:
        result = LocalSubprocessExecutor(die_with_parent=True).run(spec, folder)
    except runlock.RunBusyError as exc:
        return {"busy": str(exc), "where": where}
    if artifacts:
        where["artifacts"] = _upload(folder, artifacts)
    return {"result": result.to_json(), "where": where}


@dataclass
class RayExecutor:
    config: ExecutorConfig
    parallel: int = 1
    remote = True  # runs elsewhere: paths handed to runs are absolute
    _pending: dict[Any, tuple[RunSpec, Path]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        connect(self.config.address)
        resources = ray.cluster_resources()
        self.gpus = self.config.gpus_per_run if resources.get("GPU", 0) > 0 else 0.0
        if self.config.parallel:
            self.parallel = self.config.parallel
        else:  # what the cluster holds at once
            fits = resources["GPU"] / self.gpus if self.gpus else resources.get("CPU", 1)
            self.parallel = max(1, int(fits // (1 if self.gpus else self.config.cpus_per_run)))
        self._task = ray.remote(run_task).options(
            num_cpus=self.config.cpus_per_run,
            num_gpus=self.gpus,
            max_retries=self.config.max_retries,
            retry_exceptions=False,  # a run's own failure is a result, never retried by Ray
        )

    def submit(self, spec: RunSpec, run_dir: Path) -> Any:
        ref = self._task.remote(
            spec.model_dump_json(), str(run_dir.resolve()), self.gpus, self.config.artifacts
        )
        self._pending[ref] = (spec, run_dir)
        return ref

    def wait_any(self, handles: list[Any]) -> tuple[Any, RunResult | Exception]:
        (ref,), _ = ray.wait(handles, num_returns=1)
        spec, _run_dir = self._pending.pop(ref)
        try:
            out = ray.get(ref)
        except LOST as exc:
            reason = (
                f"node lost: the run's Ray worker or node died "
                f"({self.config.max_retries} retries): {type(exc).__name__}"
            )
            return ref, RunResult.without_run(
                spec, "failed", reason=reason, traceback=str(exc)[-3000:], started_at=now()
            )
        except ray.exceptions.RayError as exc:  # the task's own code failed
            return ref, RunResult.without_run(
                spec, "failed", reason=f"the Ray task failed: {type(exc).__name__}",
                traceback=str(exc)[-3000:], started_at=now(),
            )  # fmt: skip
        if "busy" in out:
            return ref, runlock.RunBusyError(out["busy"])
        result = RunResult.model_validate(out["result"])
        notes = {**(result.train_info.notes or {}), "executor": out["where"]}
        info = result.train_info.model_copy(update={"notes": notes})
        return ref, result.model_copy(update={"train_info": info})

    def run(self, spec: RunSpec, run_dir: Path, on_progress: Any = None) -> RunResult:
        handle = self.submit(spec, run_dir)
        _, outcome = self.wait_any([handle])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@EXECUTORS.register("ray")
def _ray(config: ExecutorConfig) -> RayExecutor:
    return RayExecutor(config)
