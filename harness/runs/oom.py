"""Why a run process died by a signal: out of memory only with evidence, else `killed`.

A SIGKILL comes from the kernel's OOM killer, but just as well from a user (`kill -9`), a
scheduler's preemption or a container's stop. Calling every one `oom` made a final status of a
kill that says nothing about the run (resume never retried it). The kernel logs each OOM kill
("Out of memory: Killed process PID ..."); where its log (/dev/kmsg) can be read, that record
is the evidence. A CUDA or host out-of-memory exception is caught in the run itself
(harness/runs/worker.py) and needs nothing from here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal

KMSG = "/dev/kmsg"
_MAX_RECORDS = 200_000  # the kernel's ring buffer holds far fewer; a bound all the same


def kernel_oom_record(pid: int, kmsg: str = KMSG) -> str | None:
    """The kernel's log line recording an OOM kill of `pid`, or None (none, or unreadable)."""
    pattern = re.compile(rf"(Killed process {pid}\b|oom-kill:.*\bpid={pid}\b)")
    try:
        fd = os.open(kmsg, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    found = None
    try:
        for _ in range(_MAX_RECORDS):
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break  # read to the end of the log
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while reading: go on
                    continue
                break
            if not record:
                break
            text = record.decode("utf-8", "replace").partition(";")[2].strip()
            if pattern.search(text):
                found = text
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return found


def signal_death(code: int, pid: int) -> tuple[str, str]:
    """(status, reason) of a run process that ended by signal -code without a result."""
    name = _signal_name(-code)
    record = kernel_oom_record(pid)
    if record is not None:
        return "oom", f"out of host memory: the kernel's OOM killer ended it ({record})"
    return "killed", (
        f"the run process was killed by {name} with no out-of-memory record (a user, a "
        "scheduler, or an OOM kill whose kernel log could not be read); it runs again on the "
        "next `ftbench run`"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
