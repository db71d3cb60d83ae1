"""PPO's EMA-updated reference (`ref_ema`): the blend itself, and a tiny full-FT PPO run with it."""

from __future__ import annotations

import yaml
from test_alignment import tiny_alignment_suite

from harness.backends.alignment.methods.ppo import _ema_reference
from harness.plan.plan import make_plan
from harness.run.runner import run_plan


def test_the_reference_moves_toward_the_policy_every_n_updates():
    import torch
    from accelerate import Accelerator
    from transformers import TrainerControl, TrainerState

    Accelerator(cpu=True)  # TRL's blend asks the accelerator state about DeepSpeed, as in a trainer
    policy, reference = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    torch.nn.init.constant_(policy.weight, 1.0)
    torch.nn.init.constant_(reference.weight, 0.0)
    callback = _ema_reference(policy, reference, alpha=0.25, every=2)
    state = TrainerState()
    for step in (1, 2, 3, 4):
        state.global_step = step
        callback.on_step_end(None, state, TrainerControl())
    # Synced after updates 2 and 4: 0 -> 0.25 -> 0.25 + 0.25 * (1 - 0.25) = 0.4375.
    assert callback.syncs == 2
    assert torch.allclose(reference.weight, torch.full((2, 2), 0.4375))
    assert torch.equal(policy.weight, torch.ones(2, 2))  # the policy is not touched


def test_a_full_ft_ppo_run_with_an_ema_reference(tmp_path):
    data = tiny_alignment_suite(["ppo"])
    data["methods"]["ppo"]["params"] |= {"peft": "full", "ref_ema": 0.5}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    report = run_plan(make_plan(path), results_dir=tmp_path / "results", db_path=tmp_path / "db")
    (ppo,) = [r for r in report.executed if r.spec["method"] == "ppo"]
    info = ppo.train_info
    assert info.status == "ok", info.reason
    assert info.notes["reference"] == "EMA: alpha 0.5 every 1 updates"
    assert info.notes["reference_syncs"] == info.notes["updates"] > 0
    assert info.metrics["test"]["kl"] == info.metrics["test"]["kl"]  # scored (not NaN)
