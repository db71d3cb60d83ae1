"""Online methods on the alignment backend (tiny model, plumbing): grpo, rloo and online_dpo each
train from the start policy against the proxy reward model and move the policy (KL to the start
> 0); their memory estimates' static terms equal what the run holds, byte for byte."""

from __future__ import annotations

import math

import pytest
import yaml
from test_alignment import _by_key, tiny_alignment_suite

from harness.plan.plan import make_plan
from harness.runs.runner import run_plan

ONLINE = ("grpo", "rloo", "online_dpo")


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("online")
    data = tiny_alignment_suite(list(ONLINE))
    data["methods"]["grpo"] = {"params": {"num_generations": 2, "beta": 0.04}}
    data["methods"]["rloo"] = {"params": {"num_generations": 2, "beta": 0.05}}
    data["methods"]["online_dpo"] = {"params": {"beta": 0.1}}
    data["training"]["learning_rate"] = 1.0e-2  # the tiny model must move in 2 steps
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    report = run_plan(make_plan(path), results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    return _by_key(report)


@pytest.mark.parametrize("key", ONLINE)
def test_each_online_method_trains_against_the_proxy_and_moves_the_policy(online, key):
    run = online[key]
    assert run.status == "ok", run.reason
    info = run.train_info
    assert info.notes["completions"] > 0
    metrics = info.metrics["test"]
    assert math.isfinite(metrics["kl"]) and metrics["kl"] != 0.0  # the policy moved
    assert {"judge_score", "indep_judge_score", "proxy_reward"} <= set(metrics)


def test_group_methods_count_whole_groups_and_online_dpo_pairs(online):
    for key in ("grpo", "rloo"):
        notes = online[key].train_info.notes
        assert notes["groups"] == notes["completions"] // 2 > 0, key
    notes = online["online_dpo"].train_info.notes
    assert notes["completions"] == 2 * notes["pairs"] > 0


def test_online_estimates_measure_exactly_the_predicted_static_bytes(online):
    """Weights, gradients and optimizer state of the policy, measured after the first optimizer
    step, equal the online estimators' fp32 CPU prediction byte for byte (LoRA: the reference is
    the base under the adapter, no weights of its own); the GPU estimate names its sampling
    terms and what CPU cannot check."""
    for key in ONLINE:
        memory = online[key].train_info.memory
        measured, predicted = memory.measured_state, memory.estimate["cpu"]["parts"]
        for term in ("weights_trainable", "weights_frozen", "gradients", "optimizer"):
            assert measured[term] == predicted[term], (key, term)
        assert measured["gradients"] > 0 and predicted["reference_weights"] == 0, key
        cuda = memory.estimate["cuda"]
        parts = cuda["parts"]
        assert parts["kv_cache"] > 0 and parts["sampling_logits"] > 0, key
        assert parts["total"] == max(parts["train_peak"], parts["eval_peak"]), key
        assert parts["total"] > parts["weights_frozen"] + parts["kv_cache"], key
        assert "not checked on CPU" in " ".join(cuda["assumptions"]), key
    parts = {key: online[key].train_info.memory.estimate["cuda"]["parts"] for key in ONLINE}
    # beta > 0: the reference's no-grad log-probabilities (RLOO: the policy's too, always)
    assert parts["grpo"]["nograd_logits"] > 0 and parts["rloo"]["nograd_logits"] > 0
    assert parts["online_dpo"]["reference_logsoftmax"] > 0
    # a generation batch of batch_size completions (GRPO, RLOO) vs 2 x batch_size (online DPO)
    assert parts["online_dpo"]["kv_cache"] == 2 * parts["grpo"]["kv_cache"]
