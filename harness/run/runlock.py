"""One live process per run folder: a run is never started twice at once.

The run's own process holds an exclusive lock on `<run_dir>/run.lock` for as long as it lives
(the kernel drops it when the process ends, however it ends). A runner checks the lock before it
starts a run, and a run that finds the lock taken exits at once without touching the folder. So
when a runner dies (`kill -9`, a lost Ray driver) and its run process lives on, a new `ftbench run`
records that run as still running instead of starting it a second time in the same folder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "run.lock"
BUSY_EXIT = 75  # EX_TEMPFAIL: the run's folder is held by another live run process


class RunBusyError(RuntimeError):
    """The run is being run by another live process (its pid in the message)."""


def claim(run_dir: Path) -> IO[str] | None:
    """Take the run's lock for this process (keep the returned file open for as long as the run
    lives), or None when another process holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def holder(run_dir: Path) -> str | None:
    """The pid holding the run's lock, or None when no live process does."""
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "?"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def busy(run_dir: Path) -> RunBusyError:
    pid = holder(run_dir) or "?"
    return RunBusyError(
        f"already running in process {pid} (another `ftbench run` started it; its result is "
        f"ingested by the next `ftbench run` once it finishes)"
    )
