"""The memory-estimate disk cache: a folder per test session, and a key that changes with any
module an estimate depends on (not a hand-kept list of them)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.memory import estimate
from harness.memory.estimate import Estimate, cached_estimate, estimate_cache_dir
from harness.models.cache import cache_dir


def test_tests_use_a_session_estimate_cache():
    here = estimate_cache_dir().resolve()
    assert here == Path(os.environ["FTBENCH_ESTIMATE_CACHE"]).resolve()
    assert here.is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert not here.is_relative_to(cache_dir().resolve())  # never the user's cache


def test_a_change_to_any_module_an_estimate_imports_is_a_new_entry(tmp_path, monkeypatch):
    source = tmp_path / "harness"
    shutil.copytree(estimate.SOURCE_ROOT, source, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(estimate, "SOURCE_ROOT", source)
    monkeypatch.setenv("FTBENCH_ESTIMATE_CACHE", str(tmp_path / "estimates"))
    calls = []

    def compute() -> Estimate:
        calls.append(1)
        return Estimate(parts={"total": len(calls)}, params={}, architecture="x")

    def cached() -> int:
        estimate._code_version.cache_clear()
        estimate._source_digest.cache_clear()
        return cached_estimate({"model": "m"}, [], compute).total

    assert (cached(), cached()) == (1, 1)  # computed once, then read back
    # Modules the estimate imports that no estimate module names (the old key missed them).
    for module in ("memory/cuda_kernels.py", "backends/lora.py", "backends/trainer_args.py",
                   "models/architectures/gpt2.json"):  # fmt: skip
        path = source / module
        path.write_text(path.read_text() + "\n")
        before = len(calls)
        assert cached() == before + 1, module  # a new entry, computed afresh
    estimate._code_version.cache_clear()
    estimate._source_digest.cache_clear()
