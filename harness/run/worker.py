"""Subprocess entry for one run: `python -m harness.run.worker SPEC_JSON RUN_DIR`.

Whatever happens inside (exception, CUDA OOM, NaN loss), a result.json with a status and a reason
is written; only a hard crash (segfault, kill) leaves none, and the parent records that.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from harness.models.offline import configure_offline_mode
from harness.run import determinism, runlock


def classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if (
        isinstance(exc, MemoryError)
        or "out of memory" in text.lower()
        or "OutOfMemoryError" in text
    ):
        return "oom"
    return "failed"


def _memory_numbers() -> str:
    """Peak memory at the time of an OOM, and the budget cap it ran under."""
    from harness.memory.measure import peak_memory

    memory = peak_memory()
    if "cuda_max_allocated" not in memory:
        return f"out of memory at peak RSS {memory['peak_rss_bytes'] / 1e9:.2f} GB"
    cap = memory.get("cuda_cap_bytes")
    return (
        f"out of memory: peak allocated {memory['cuda_max_allocated'] / 1e9:.2f} GB, reserved "
        f"{memory['cuda_max_reserved'] / 1e9:.2f} GB, cap "
        + (f"{cap / 1e9:.2f} GB" if cap else "none (the whole GPU)")
    )


def die_with_parent() -> None:
    """Under Ray (FTBENCH_DIE_WITH_PARENT=1): end this run process when the process that started
    it dies, so a retry of the task can take the run's lock. A local runner's run outlives it
    instead (the lock then keeps a new runner from starting it twice)."""
    import ctypes
    import os
    import signal

    if os.environ.get("FTBENCH_DIE_WITH_PARENT") != "1" or not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


def main(argv: list[str]) -> int:
    spec_path, run_dir = Path(argv[0]), Path(argv[1])
    die_with_parent()
    lock = runlock.claim(run_dir)  # held until this process ends, however it ends
    if lock is None:
        print(f"{run_dir} is held by another live run process: not started", file=sys.stderr)
        return runlock.BUSY_EXIT
    configure_offline_mode()
    determinism.configure_env(json.loads(spec_path.read_text()))  # before torch is imported
    from harness.run.lifecycle import execute
    from harness.store.result import RESULT_FILE, RunResult, now, write_atomic
    from harness.suite.spec import RunSpec

    spec = RunSpec.model_validate(json.loads(spec_path.read_text()))
    started = now()
    try:
        result = execute(spec, run_dir, progress_path=run_dir / "progress.json").result
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded status
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        reason = f"{type(exc).__name__}: {exc}"
        if classify(exc) == "oom":
            reason = f"{_memory_numbers()}; {reason}"  # the numbers first: the message is long
        result = RunResult.without_run(
            spec, classify(exc), reason=reason[:2000], traceback=tb[-4000:], started_at=started
        )
    write_atomic(run_dir / RESULT_FILE, result)
    return 0


def forked(spec_path: Path, run_dir: Path, log_path: Path, env: dict[str, str]) -> None:
    """A run process forked from a warm server (harness/run/launch.py): a session of its own, the
    runner's environment, stdout and stderr into the run's log; then the same main."""
    import os

    os.setsid()
    os.environ.clear()
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for stream in (1, 2):
        os.dup2(log, stream)
    try:
        main([str(spec_path), str(run_dir)])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
