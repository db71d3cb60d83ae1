"""Starting a run's process: a fork of a warm interpreter, or a fresh one.

A fresh run process spends about 5 s on this machine importing torch, transformers, PEFT, TRL and
datasets before its first line of work. On a machine without a GPU, run processes are forked
from a server process that imported them once (multiprocessing's forkserver, preloaded): each
run is still a process of its own, in a session of its own, with its own memory peak, log and
exit status; only the imports are shared. A GPU machine starts a fresh interpreter for every run:
libraries may touch CUDA at import, and a process that has cannot be forked safely. Forking is
also skipped when the environment changed since the server started (libraries read some
variables, like the Hugging Face cache paths, when they are imported), and when
FTBENCH_FORK=0.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

PRELOAD = ["torch", "transformers", "peft", "trl", "datasets", "harness.run.lifecycle"]
_server_env: dict[str, str] | None = None  # the environment the fork server started with


class Launched(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class _Forked:
    """A forked run process, with the Popen methods the executor uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self) -> int:
        self.process.join()
        return self.process.exitcode


def launch(python: str, spec_path: Path, run_dir: Path, log_path: Path, env: dict) -> Launched:
    """The run process for spec_path, writing to log_path, in a session of its own (so a timeout
    can kill it with everything it started)."""
    if _can_fork(python, env):
        from harness.run.worker import forked

        context = multiprocessing.get_context("forkserver")
        process = context.Process(target=forked, args=(spec_path, run_dir, log_path, env))
        process.start()
        return _Forked(process)
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [python, "-m", "harness.run.worker", str(spec_path), str(run_dir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )  # fmt: skip


def _can_fork(python: str, env: dict) -> bool:
    global _server_env
    if (
        os.environ.get("FTBENCH_FORK", "1") == "0"
        or python != sys.executable
        or Path("/dev/nvidiactl").exists()  # an NVIDIA driver: fresh interpreters only
    ):
        return False
    if _server_env is None:
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        _server_env = dict(env)  # the server starts with the environment of the first run
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return env == _server_env
