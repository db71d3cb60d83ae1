"""LLaMA-Factory's training knobs as suite fields: each reaches TRL/PEFT/transformers, trains on
the tiny model, and has a memory answer; the ones that cannot run here are suite errors."""

from __future__ import annotations

import json

import pytest
from helpers import grid_specs, load_specs, suite_dict
from transformers import TrainerCallback

from harness.plan.budget import estimate_or_reason
from harness.run.lifecycle import execute
from harness.suite.suite_file import SuiteError


class Seen(TrainerCallback):
    """What the trainer trains with: the optimizer's learning rates and the embedding hooks."""

    def __init__(self) -> None:
        self.lrs: set[float] = set()
        self.embedding_hooks = 0

    def on_step_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.lrs = {group["lr"] for group in optimizer.param_groups if group["params"]}
        self.embedding_hooks = len(model.get_input_embeddings()._forward_hooks)


def _spec(method: str, params: dict, **training):
    data = suite_dict(methods={"m": {"method": method, "params": params}})
    data["grid"]["methods"] = ["m"]
    data["training"].update({"warmup_ratio": 0.0, "lr_scheduler": "constant", **training})
    (spec,) = grid_specs(data)
    return spec


def test_lora_knobs_reach_peft_and_the_trainer(tmp_path):
    params = {"r": 4, "use_rslora": True, "init": "pissa", "loraplus_lr_ratio": 16.0}
    spec = _spec("lora", params, neftune_noise_alpha=5.0, packing=True)
    seen = Seen()
    info = execute(spec, tmp_path, extra_callbacks=[seen]).result.train_info
    assert info.status == "ok", info.reason
    adapter = json.loads((tmp_path / "weights" / "adapter_config.json").read_text())
    assert adapter["use_rslora"] is True and adapter["init_lora_weights"] == "pissa"
    lr = spec.training.learning_rate
    assert seen.lrs == {lr, lr * 16.0}  # LoRA+: B's rate is ratio x A's
    assert seen.embedding_hooks == 1  # NEFTune's noise hook while training
    found, _ = estimate_or_reason(spec, "cuda")
    assert any(a.startswith("NEFTune: no memory term") for a in found.assumptions)
    assert any(a.startswith("packing: no memory term") for a in found.assumptions)


def test_qlora_8bit_trains_and_is_estimated_at_a_byte_a_weight(tmp_path):
    spec4 = _spec("qlora", {"r": 4})
    spec8 = _spec("qlora", {"r": 4, "bits": 8})
    info = execute(spec8, tmp_path).result.train_info
    assert info.status == "ok", info.reason
    w4 = estimate_or_reason(spec4, "cuda")[0].parts["weights_frozen"]
    w8 = estimate_or_reason(spec8, "cuda")[0].parts["weights_frozen"]
    assert w4 < w8


def test_unset_knobs_leave_run_ids_alone():
    plain, rs = _spec("lora", {"r": 4}), _spec("lora", {"r": 4, "use_rslora": True})
    assert (
        "use_rslora" not in plain.params
        and "neftune_noise_alpha" not in plain.training.model_dump()
    )
    assert plain.run_id != rs.run_id


@pytest.mark.parametrize(
    "method,params,training,fragment",
    [
        ("lora", {}, {"optimizer": "galore_adamw"}, "needs the galore-torch package"),
        ("lora", {"loraplus_lr_ratio": 16.0}, {"optimizer": "adamw_bnb_8bit"}, "loraplus_lr_ratio"),
        ("lora", {"init": "svd"}, {}, "init"),
    ],
)
def test_knobs_that_cannot_run_are_suite_errors(method, params, training, fragment, write_suite):
    data = suite_dict(methods={"m": {"method": method, "params": params, "training": training}})
    data["grid"]["methods"] = ["m"]
    with pytest.raises(SuiteError, match=fragment):
        load_specs(write_suite(data))
