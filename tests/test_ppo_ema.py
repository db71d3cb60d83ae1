"""PPO's EMA-updated reference (`ref_ema`): the blend itself, and a tiny full-FT PPO run with it."""

from __future__ import annotations

import yaml
from test_alignment import tiny_alignment_suite

from harness.backends.alignment.methods.ppo import _ema_reference
from harness.plan.plan import make_plan
from harness.runs.lifecycle import execute
from harness.runs.runner import run_plan


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


def test_a_full_ft_ppo_run_with_an_ema_reference(tmp_path, monkeypatch):
    """The stages run as usual; the PPO run in this process, with every blend of the reference
    recorded: each one is (1 - alpha) x the reference + alpha x the policy being trained, and the
    reference ends away from where it started."""
    import torch

    from harness.backends.alignment.methods import ppo as ppo_method

    data = tiny_alignment_suite(["ppo"])
    data["methods"]["ppo"]["params"] |= {"peft": "full", "ref_ema": 0.5}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    plan = make_plan(path)
    results = tmp_path / "results"
    stages = plan.subset([r for r in plan.runs if r.spec.method != "ppo"])
    assert all(r.status == "ok" for r in run_plan(stages, results_dir=results).executed)

    blends = []  # (alpha, reference before, trained policy, reference after) per sync
    start = {}

    def recorded(policy, reference, alpha, every):
        callback = ema_reference(policy, reference, alpha, every)
        start.update({n: p.detach().clone() for n, p in reference.named_parameters()})
        sync = callback.on_step_end

        def on_step_end(args, state, control, **kwargs):
            trained = kwargs["model"].policy  # the trainer's own policy, not what was passed
            before = {n: p.detach().clone() for n, p in reference.named_parameters()}
            sync(args, state, control, **kwargs)
            after = dict(reference.named_parameters())
            blends.append((alpha, before, dict(trained.named_parameters()), after))
            for name, p in after.items():  # checked now: the policy moves on at the next step
                expected = (1 - alpha) * before[name] + alpha * blends[-1][2][name].detach()
                torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)

        callback.on_step_end = on_step_end
        return callback

    ema_reference = ppo_method._ema_reference
    monkeypatch.setattr(ppo_method, "_ema_reference", recorded)
    (spec,) = [r.spec for r in plan.runs if r.spec.method == "ppo"]
    info = execute(spec, results / "runs" / spec.run_id).result.train_info
    assert info.status == "ok", info.reason
    assert info.notes["reference"] == "EMA: alpha 0.5 every 1 updates"
    assert info.notes["reference_syncs"] == info.notes["updates"] == len(blends) > 0
    assert all(alpha == 0.5 for alpha, *_ in blends)
    moved = max(
        (p.detach() - start[n]).abs().max().item() for n, p in blends[-1][3].items()
    )  # the reference is no longer the start policy
    assert moved > 0
    assert info.metrics["test"]["kl"] != 0.0  # the policy moved away from the start too
