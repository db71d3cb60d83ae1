"""The ftbench cache (converted offline models, built tiny models): FTBENCH_CACHE or ~/.cache/ftbench."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ftbench"
    path = Path(os.environ.get("FTBENCH_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def materialize(name: str, build: Callable[[Path], None]) -> Path:
    """Return cache_dir()/name, building it once with build(tmp_dir) under a file lock.

    The build writes into a temporary folder that is renamed into place, so a crash mid-build
    never leaves a half-written entry that later runs would trust.
    """
    final = cache_dir() / name
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if final.is_dir():  # another process built it while we waited
            return final
        tmp = final.parent / f".{final.name}.building"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        build(tmp)
        tmp.rename(final)
    return final
