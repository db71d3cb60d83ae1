"""Each method trains 2 steps on the tiny random model and changes only the parameters it should."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import suite_dict
from transformers import TrainerCallback

from harness.runs.lifecycle import execute
from harness.suite.suite_file import Suite, expand


class Snapshot(TrainerCallback):
    """Copies every parameter when training starts (after PEFT has wrapped the model)."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}


def _spec(method: str, params: dict | None = None):
    data = suite_dict(methods={"m": {"method": method, "params": params or {}}})
    data["grid"]["methods"] = ["m"]
    (spec,) = expand(Suite.model_validate(data))
    return spec


FORGETTING = {"general_loss_before", "general_loss", "forgetting"}

# method, params, pattern every trainable (and every changed) parameter name must match
CASES = [
    ("lora", {"r": 4}, r"lora_[AB]"),
    ("lora", {"r": 4, "use_dora": True}, r"lora_(A|B|magnitude_vector)"),
    ("ia3", {}, r"ia3_l"),
    ("prompt", {"num_virtual_tokens": 4, "init": "random"}, r"prompt_encoder"),
    ("prefix", {"num_virtual_tokens": 4}, r"prompt_encoder"),
    ("qlora", {"r": 4}, r"lora_[AB]"),
    ("freeze", {"n_layers": 1, "train_head": False}, r"^model\.(layers\.1\.|norm\.)"),
    ("ln_tuning", {}, r"norm.*\.ln_tuning_layers\."),
]


@pytest.mark.parametrize(
    "method,params,pattern",
    CASES,
    ids=[f"{c[0]}{'+dora' if c[1].get('use_dora') else ''}" for c in CASES],
)
def test_method_trains_only_its_parameters(method, params, pattern, tmp_path):
    snapshot = Snapshot()
    out = execute(_spec(method, params), tmp_path, extra_callbacks=[snapshot])
    info = out.result.train_info
    after = dict(out.model.named_parameters())
    trainable = {n for n, p in after.items() if p.requires_grad}
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), snapshot.before[n])}
    assert trainable and changed, "nothing trained"
    assert all(re.search(pattern, n) for n in trainable), sorted(
        trainable - {n for n in trainable if re.search(pattern, n)}
    )
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:5]}"
    assert 0 < info.params.trainable_params < info.params.total_params
    assert len(info.curve) == 2 and all(p["loss"] > 0 for p in info.curve)
    per_class = {"f1/negative", "f1/positive"}  # sentiment is a classification preset
    assert set(info.metrics["test"]) == {
        "accuracy",
        "macro_f1",
        "eval_loss",
        *per_class,
        *FORGETTING,
    }
    assert info.artifact_bytes > 0


def test_full_finetuning_trains_every_block(tmp_path):
    snapshot = Snapshot()
    out = execute(_spec("full"), tmp_path, extra_callbacks=[snapshot])
    after = dict(out.model.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), snapshot.before[n])}
    assert all(p.requires_grad for p in after.values())
    for layer in (0, 1):
        assert any(n.startswith(f"model.layers.{layer}.") for n in changed)
    params = out.result.train_info.params
    assert params.trainable_params == params.total_params


def test_freeze_with_head_trains_the_tied_embeddings(tmp_path):
    out = execute(_spec("freeze", {"n_layers": 1, "train_head": True}), tmp_path)
    trainable = {n for n, p in out.model.named_parameters() if p.requires_grad}
    assert "model.embed_tokens.weight" in trainable  # tied to lm_head in this model
    assert not any(n.startswith("model.layers.0.") for n in trainable)
    assert out.result.train_info.notes["head_tied_to_embeddings"] is True


def test_zero_shot_trains_nothing(tmp_path):
    info = execute(_spec("zero_shot"), tmp_path).result.train_info
    assert info.params.trainable_params == 0
    assert info.timings.train_s == 0 and info.curve == []
    assert 0.0 <= info.metrics["test"]["accuracy"] <= 1.0


def test_forgetting_is_measured_before_and_after(tmp_path):
    """Full fine-tuning at a high rate moves the general-text loss; zero_shot leaves it as it was."""
    from harness.backends.sft import forgetting

    assert len(forgetting.sample_texts()) == forgetting.SAMPLE_SIZE
    full = execute(
        _spec("full").model_copy(
            update={"training": _spec("full").training.model_copy(update={"learning_rate": 1e-2})}
        ),
        tmp_path / "full",
    ).result.train_info
    base = execute(_spec("zero_shot"), tmp_path / "zero").result.train_info
    m, z = full.metrics["test"], base.metrics["test"]
    assert m["general_loss_before"] == pytest.approx(z["general_loss_before"])
    assert m["forgetting"] == pytest.approx(m["general_loss"] - m["general_loss_before"])
    assert m["forgetting"] != 0.0 and z["forgetting"] == 0.0
    assert full.notes["general_text_sha256"] == forgetting.sample_sha256()
