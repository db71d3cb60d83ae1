"""LLaMA-Factory's training knobs as suite fields: each reaches TRL/PEFT/transformers, trains on
the tiny model, and has a memory answer; the ones that cannot run here are suite errors."""

from __future__ import annotations

import json

import pytest
from helpers import grid_specs, load_specs, suite_dict
from transformers import TrainerCallback

from harness.plan.budget import estimate_or_reason
from harness.runs.lifecycle import execute
from harness.suite.suite_file import SuiteError


class Seen(TrainerCallback):
    """What the trainer trains with: the optimizer's learning rates and the embedding hooks."""

    def __init__(self) -> None:
        self.lrs: set[float] = set()
        self.embedding_hooks = 0

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.packing = args.packing
        self.rows = len(train_dataloader.dataset)
        self.columns = set(train_dataloader.dataset.column_names)

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
    # packing reached TRL: its SFTConfig says so, and the trainer's dataset went through TRL's
    # pack_dataset (its per-row sequence lengths, for the padding-free collator, are only there
    # when packed; these 8 reviews are too long for two to share a 128-token row)
    assert seen.packing is True
    assert "seq_lengths" in seen.columns and seen.rows == 8, (seen.rows, seen.columns)
    found, _ = estimate_or_reason(spec, "cuda")
    assert any(a.startswith("NEFTune: no memory term") for a in found.assumptions)
    assert any(a.startswith("packing: no memory term") for a in found.assumptions)


def test_qlora_8bit_trains_and_is_estimated_at_a_byte_a_weight(tmp_path):
    spec4 = _spec("qlora", {"r": 4})
    spec8 = _spec("qlora", {"r": 4, "bits": 8})
    info = execute(spec8, tmp_path).result.train_info
    assert info.status == "ok", info.reason
    four, eight = (estimate_or_reason(s, "cuda")[0].parts for s in (spec4, spec8))
    # The tiny Llama by hand (hidden 64, kv 2 x 16, MLP 128, 2 layers, vocab 512, tied head):
    # per layer q 64x64 + k 32x64 + v 32x64 + o 64x64 + gate/up/down 3 x 128x64 = 36,864 linear
    # weights with 512 output rows; 2 layers: 73,728 weights, 1,024 rows. Unquantized and fp32:
    # the embedding (512 x 64) and 5 RMSNorms of 64: 33,088 x 4 bytes = 132,352.
    linear, rows, rest = 73_728, 1_024, 132_352
    assert eight["weights_frozen"] == linear + rest == 206_080  # LLM.int8: a byte a weight
    assert eight["quant_constants"] == 4 * rows == 4_096  # an fp32 scale per output row
    assert four["weights_frozen"] == linear // 2 + rest == 169_216  # NF4: two weights a byte
    # NF4 absmaxes: 1,152 blocks of 64 as 8-bit (double quantization), an fp32 scale per 256 of
    # them in each of the 14 matrices, and each matrix's 256-entry fp32 code book
    assert four["quant_constants"] == 1_152 + 14 * 4 + 14 * 4 * 256 == 15_544


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
