"""Speed as users get it (harness/run/speed.py): per-step times, steady state after the warm-up."""

from __future__ import annotations

import pytest
from helpers import grid_specs, suite_dict

from harness.run import speed
from harness.run.lifecycle import execute


def test_steady_state_leaves_out_the_warm_up_steps():
    found = speed.summarize([5.0, 2.0, 1.0, 1.0, 2.0], [100, 100, 100, 200, 100], 8)
    assert found["warmup_steps"] == 2 and found["steady_steps"] == 3
    assert found["time_to_first_step_s"] == 5.0
    assert found["steady_tokens_per_s"] == pytest.approx(400 / 4.0)
    assert found["steady_samples_per_s"] == pytest.approx(3 * 8 / 4.0)
    # Two steps: one left out; one step: nothing left to leave out.
    assert speed.summarize([3.0, 1.0], [10, 10], 1)["warmup_steps"] == 1
    assert speed.summarize([3.0], [10], 1)["steady_tokens_per_s"] == pytest.approx(10 / 3.0)
    assert speed.summarize([1.0, 1.0], [None, None], 4)["steady_tokens_per_s"] is None
    assert speed.summarize([], [], 4) is None


def test_a_run_times_every_optimizer_step(tmp_path):
    data = suite_dict()
    data["training"]["max_steps"] = 4
    (spec,) = grid_specs(data)
    info = execute(spec, tmp_path).result.train_info
    timed = info.speed
    assert len(timed["step_s"]) == 4 and all(s > 0 for s in timed["step_s"])
    assert sum(timed["step_s"]) <= info.timings.train_s
    assert timed["step_tokens"][2:] and all(n > 0 for n in timed["step_tokens"])
    steady = sum(timed["step_tokens"][2:]) / sum(timed["step_s"][2:])
    assert timed["steady_tokens_per_s"] == pytest.approx(steady)
