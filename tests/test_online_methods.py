"""Online critic-free methods on the alignment backend (tiny model, plumbing): each trains from the
start policy against the proxy reward model and moves the policy (KL to the start > 0)."""

from __future__ import annotations

import math

import pytest
import yaml
from test_alignment import _by_key, tiny_alignment_suite

from harness.plan.plan import make_plan
from harness.runs.runner import run_plan


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("online")
    data = tiny_alignment_suite(["grpo"])
    data["methods"]["grpo"] = {"params": {"num_generations": 2, "beta": 0.04}}
    data["training"]["learning_rate"] = 1.0e-2  # the tiny model must move in 2 steps
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    report = run_plan(make_plan(path), results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    return _by_key(report)


def test_grpo_trains_against_the_proxy_and_moves_the_policy(online):
    run = online["grpo"]
    assert run.status == "ok", run.reason
    info = run.train_info
    assert info.notes["groups"] == info.notes["completions"] // 2 > 0
    metrics = info.metrics["test"]
    assert math.isfinite(metrics["kl"]) and metrics["kl"] != 0.0  # the policy moved
    assert {"judge_score", "indep_judge_score", "proxy_reward"} <= set(metrics)


def test_grpo_says_it_is_not_estimated_rather_than_scoring_only(online):
    estimate = online["grpo"].train_info.memory.estimate["cuda"]
    assert "grpo: the policy's training on groups of generations" in estimate["error"]
