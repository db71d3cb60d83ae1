"""Feature-based (frozen LM + trained head): plumbing on the tiny model, and on the real SmolLM2
it beats the zero-shot baseline on the same sentiment test split."""

from __future__ import annotations

import pytest
import torch
from helpers import grid_specs, load_specs, suite_dict

from harness.backends.sft.methods.feature_based import HEAD_FILE
from harness.run.lifecycle import execute
from harness.suite.suite_file import SuiteError


def _spec(params: dict | None = None, **training):
    data = suite_dict(methods={"fb": {"method": "feature_based", "params": params or {}}})
    data["grid"]["methods"] = ["fb"]
    data["training"].update({"learning_rate": 1.0e-2, **training})
    (spec,) = grid_specs(data)
    return spec


@pytest.mark.parametrize("params", [{}, {"pooling": "mean", "head": "mlp", "mlp_hidden": 8}])
def test_only_the_head_trains(params, tmp_path):
    spec = _spec(params)
    out = execute(spec, tmp_path)
    info = out.result.train_info
    assert info.status == "ok", info.reason
    model = out.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    assert not any(p.requires_grad for p in model.lm.parameters())
    assert info.params.trainable_params == sum(p.numel() for p in model.head.parameters())
    assert [p["step"] for p in info.curve] == [1, 2] and all(p["loss"] > 0 for p in info.curve)
    # no eval_loss (the head's cross-entropy is not the LM's completion loss); the LM is frozen
    assert set(info.metrics["test"]) == {
        "accuracy", "macro_f1", "general_loss_before", "general_loss", "forgetting"
    }  # fmt: skip
    assert info.metrics["test"]["forgetting"] == 0.0
    assert (tmp_path / "weights" / HEAD_FILE).is_file() and info.artifact_bytes > 0


def test_same_lm_weights_after_training(tmp_path):
    from harness.backends.sft.methods import METHODS
    from harness.models import load_causal_lm, resolve_model

    spec = _spec()
    out = execute(spec, tmp_path)
    fresh = load_causal_lm(resolve_model(spec.model), dtype=torch.float32)
    fresh_state = fresh.state_dict()
    for name, value in out.model.lm.state_dict().items():
        assert torch.equal(value, fresh_state[name]), name
    assert "feature_based" in METHODS


def test_refused_on_a_task_without_labels(write_suite):
    data = suite_dict(methods={"fb": {"method": "feature_based"}})
    data["grid"]["methods"] = ["fb"]
    data["datasets"] = {
        "qa": {"source": "chatterbot_qa", "task": "qa", "splits": {"train": 8, "test": 4}}
    }
    data["grid"]["datasets"] = ["qa"]
    with pytest.raises(SuiteError, match="task 'qa' has none"):
        load_specs(write_suite(data))


@pytest.mark.slow
def test_beats_zero_shot_on_smollm2(tmp_path):
    """SmolLM2's pooled last-token state carries the review's sentiment: a linear head trained on
    400 reviews scores above the untrained model's own answer on the same 200 test reviews."""
    data = suite_dict(
        models={"smollm2": {"asset": "smollm2-135m-instruct"}},
        methods={"zero_shot": {}, "fb": {"method": "feature_based"}},
    )
    data["grid"].update(methods=["zero_shot", "fb"], models=["smollm2"])
    data["datasets"]["rt"]["options"]["max_words"] = 40
    data["datasets"]["rt"]["splits"] = {"train": 400, "validation": 4, "test": 200}
    data["training"].update(max_steps=60, batch_size=16, max_length=96, learning_rate=1.0e-3)
    scores = {}
    for spec in grid_specs(data):
        info = execute(spec, tmp_path / spec.method_key).result.train_info
        scores[spec.method_key] = info.metrics["test"]["accuracy"]
    assert scores["fb"] > scores["zero_shot"] + 0.05, scores
