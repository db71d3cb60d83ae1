from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"

# Offline like CI; test plug-ins visible to this process and to run subprocesses alike.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["FTBENCH_PLUGINS"] = "ftbench_faults"
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(PLUGINS), str(ROOT), os.environ.get("PYTHONPATH")])
)
sys.path.insert(0, str(PLUGINS))
# Memory estimates cached in a folder of this session (run subprocesses inherit it): never a stale
# entry from ~/.cache, nor one this session's code did not compute. pytest-xdist's workers inherit
# the folder their controller made, so the session estimates each configuration once.
if not os.environ.get("PYTEST_XDIST_WORKER"):
    _ESTIMATES = tempfile.mkdtemp(prefix="ftbench-test-estimates-")
    os.environ["FTBENCH_ESTIMATE_CACHE"] = _ESTIMATES
    atexit.register(shutil.rmtree, _ESTIMATES, ignore_errors=True)
else:
    # One torch thread per worker (and per run process it starts): two workers with two threads
    # each on two cores slow each other many times over. Set before anything imports torch.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def write_suite(tmp_path):
    import yaml

    def write(data: dict, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
