from __future__ import annotations

import os
import sys
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


@pytest.fixture
def write_suite(tmp_path):
    import yaml

    def write(data: dict, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
