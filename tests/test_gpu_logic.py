"""GPU logic that a CPU can test: how an out-of-memory exception is classified and which numbers
its reason carries, the dtype weights are loaded in, and the arguments of the budget's CUDA memory
cap (torch.cuda replaced by a stand-in: no GPU is touched)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import grid_specs, suite_dict

from harness.backends.trainer_args import weights_dtype
from harness.memory import measure
from harness.plan.plan import make_plan
from harness.runs import lifecycle, worker  # imported before torch.cuda is faked
from harness.runs.runner import run_plan
from harness.suite.budget_profile import T4_USABLE_GB

GB = 1e9


def test_out_of_memory_exceptions_are_oom_and_the_rest_failed():
    import torch

    assert worker.classify(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate")) == "oom"
    assert worker.classify(MemoryError()) == "oom"  # the host's, with no message
    assert worker.classify(RuntimeError("DefaultCPUAllocator: can't allocate: out of memory")) == (
        "oom"
    )
    assert worker.classify(RuntimeError("boom")) == "failed"
    assert worker.classify(ValueError("memory is fine")) == "failed"


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda as an 80 GB card that is present: what the harness asks of it, recorded."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=80 * GB)
    )
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction",
        lambda fraction, device=None: calls.append((fraction, device)),
    )  # fmt: skip
    return calls


def test_the_oom_reason_carries_the_cuda_peak_and_the_cap(fake_cuda, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 12_345_000_000)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 14_000_000_000)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 0.1875)
    assert worker._memory_numbers() == (
        "out of memory: peak allocated 12.35 GB, reserved 14.00 GB, cap 15.00 GB"
    )  # 0.1875 x 80 GB: the T4 budget's cap
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 1.0)
    assert worker._memory_numbers().endswith("cap none (the whole GPU)")


def test_the_cuda_cap_is_the_budget_over_the_cards_memory(fake_cuda):
    limit = int(T4_USABLE_GB * GB)
    assert measure.cap_cuda_memory(limit) == limit
    assert fake_cuda == [(pytest.approx(15 / 80), 0)]  # 15 GB of an 80 GB card, device 0
    fake_cuda.clear()
    assert measure.cap_cuda_memory(None) is None  # no budget: the whole card
    assert measure.cap_cuda_memory(80 * GB) is None  # a card no larger than the budget
    assert measure.cap_cuda_memory(100 * GB) is None
    assert fake_cuda == []


def test_a_run_caps_cuda_at_its_budget(fake_cuda, monkeypatch):
    monkeypatch.setattr(measure, "reset_peak", lambda: None)  # no CUDA peak window to reset
    monkeypatch.setattr(lifecycle.determinism, "apply", lambda seed, settings: None)
    (spec,) = grid_specs(suite_dict(budget={"profile": "t4"}))
    assert spec.budget.limit_bytes == 15_000_000_000
    assert lifecycle.start(spec) == "cuda"
    assert fake_cuda == [(pytest.approx(15 / 80), 0)]


@pytest.mark.parametrize(
    "trains,device,precision,expected",
    [
        (False, "cuda", "fp16", "float16"),  # a frozen base under an adapter: half precision
        (False, "cuda", "bf16", "bfloat16"),
        (True, "cuda", "fp16", "float32"),  # trained weights: fp32 masters for the GradScaler
        (True, "cuda", "bf16", "float32"),
        (False, "cuda", "fp32", "float32"),
        (False, "cpu", "fp16", "float32"),  # a CPU runs fp32 whatever the suite asks
        (True, "cpu", "bf16", "float32"),
    ],
)
def test_weights_dtype(trains, device, precision, expected):
    assert weights_dtype(trains, device, precision) == expected


def test_a_run_that_runs_out_of_cuda_memory_is_recorded_oom_with_its_numbers(tmp_path, write_suite):
    data = suite_dict(methods={"oom": {"method": "cuda_oom"}})
    data["grid"]["methods"] = ["oom"]
    report = run_plan(make_plan(write_suite(data)), results_dir=tmp_path / "results")
    (result,) = report.executed
    info = result.train_info
    assert info.status == "oom", info.reason
    # on CPU the numbers are the peak RSS, first; then the exception
    assert info.reason.startswith("out of memory at peak RSS ")
    assert "GB; OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in info.reason
    rss_gb = float(info.reason.split("peak RSS ")[1].split(" GB")[0])
    assert 0.05 < rss_gb < 64  # a real number of this process, not a placeholder
