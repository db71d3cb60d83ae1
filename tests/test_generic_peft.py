"""The generic PEFT method: configs checked against PEFT's own classes when the suite is read,
each catalogue type trains only its own parameters on the tiny model, and every type gets a
memory answer (an estimate, or "not estimated" with the reason)."""

from __future__ import annotations

import re

import pytest
from helpers import suite_dict
from test_methods import Snapshot

from harness.backends.sft.methods import METHODS
from harness.backends.sft.methods.generic_peft import build_config
from harness.plan.budget import estimate_or_reason
from harness.runs.lifecycle import execute
from harness.suite.suite_file import SuiteError

T = ["q_proj", "v_proj"]
# peft_type, config, pattern of its trainable parameter names, whether the estimator traces it
TYPES = [
    ("LOHA", {"r": 4, "alpha": 8, "target_modules": T}, r"hada_", False),
    ("LOKR", {"r": 4, "alpha": 8, "target_modules": T}, r"lokr_", False),
    ("BOFT", {"boft_block_size": 4, "target_modules": T}, r"boft_", False),
    ("OFT", {"r": 0, "oft_block_size": 16, "target_modules": T}, r"oft_R", True),
    ("VERA", {"r": 8, "target_modules": T}, r"vera_lambda_", True),
    ("ADALORA", {"init_r": 8, "target_r": 4, "total_step": 2, "target_modules": T},
     r"lora_[ABE]", True),
    ("LN_TUNING", {}, r"ln_tuning_layers", True),
    ("FOURIERFT", {"n_frequency": 64, "target_modules": T}, r"fourierft_spectrum", True),
    ("HRA", {"r": 4, "target_modules": T}, r"hra_u", True),
    ("MISS", {"r": 4, "target_modules": T}, r"miss_block", True),
    ("C3A", {"block_size": 16, "target_modules": T}, r"c3a_kernel", True),
    ("ADAPTION_PROMPT", {"adapter_len": 4, "adapter_layers": 1}, r"adaption_(prompt|gate)", True),
]  # fmt: skip


def _suite(peft_type: str, config: dict, **training) -> dict:
    data = suite_dict(
        methods={"m": {"method": "peft", "params": {"peft_type": peft_type, "config": config}}}
    )
    data["grid"]["methods"] = ["m"]
    data["training"].update(training)
    return data


@pytest.mark.parametrize("peft_type,config,pattern,traced", TYPES, ids=[t[0] for t in TYPES])
def test_peft_type_trains_only_its_parameters(peft_type, config, pattern, traced, tmp_path):
    from helpers import grid_specs

    extra = {"loss_type": "nll"} if peft_type == "ADAPTION_PROMPT" else {}
    (spec,) = grid_specs(_suite(peft_type, config, **extra))
    snapshot = Snapshot()
    out = execute(spec, tmp_path, extra_callbacks=[snapshot])
    info = out.result.train_info
    assert info.status == "ok", info.reason
    after = dict(out.model.named_parameters())
    trainable = {n for n, p in after.items() if p.requires_grad}
    changed = {n for n, p in after.items() if not p.detach().equal(snapshot.before[n])}
    assert trainable and changed, "nothing trained"
    assert all(re.search(pattern, n) for n in trainable), sorted(trainable)[:5]
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:5]}"
    assert set(info.metrics["test"]) >= {"accuracy", "macro_f1", "eval_loss"}
    if peft_type == "ADALORA":  # the rank budget was re-allocated (PEFT's update_and_allocate)
        pattern = out.model.peft_config["default"].rank_pattern
        assert pattern, "update_and_allocate never ran"
        kept = sum(sum(ranks) for ranks in pattern.values())
        assert 0 < kept < config["init_r"] * len(pattern)
    found, why = estimate_or_reason(spec, "cuda")
    if traced:
        assert found is not None and found.total > 0, why
        # AdaLoRA's rank counters are parameters PEFT's own count leaves out: within 1%
        assert found.params["trainable_params"] == pytest.approx(
            info.params.trainable_params, rel=0.01
        )
    else:  # PEFT's layers use data-dependent ops the estimator's fake tensors cannot run
        assert found is None and why.startswith("not estimated"), why


BAD = {
    "unknown field": (_suite("LOHA", {"alpah": 8}), ["config.alpah", "LoHaConfig", "'alpha'"]),
    "wrong type": (_suite("LOHA", {"r": "8"}), ["config.r", "'8' is not a int"]),
    "string float": (_suite("VERA", {"vera_dropout": "0.1"}), ["config.vera_dropout"]),  # quoted
    "unknown type": (_suite("loha", {}), ["peft_type 'loha'", "did you mean 'LOHA'"]),
    "set by harness": (_suite("LOHA", {"task_type": "SEQ_CLS"}), ["config.task_type"]),
    "PEFT refuses": (
        _suite("OFT", {"r": 0, "oft_block_size": 0}),
        ["OFTConfig refuses this config"],
    ),
    "needs nll": (_suite("ADAPTION_PROMPT", {}), ["ADAPTION_PROMPT needs training.loss_type"]),
    "adalora schedule": (
        _suite("ADALORA", {"init_r": 8, "target_r": 4, "total_step": 50}),
        ["config.total_step (50) must be training.max_steps (2)"],
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_peft_config_is_a_suite_error(case, write_suite):
    data, fragments = BAD[case]
    from helpers import load_specs

    path = write_suite(data)
    with pytest.raises(SuiteError) as err:
        load_specs(path)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_named_methods_are_presets_of_the_generic_path():
    """The presets' configs are what PEFT's own classes give for the same fields."""
    from peft import IA3Config, LoraConfig

    lora = METHODS.get("lora").Params.model_validate({"r": 4, "use_dora": True})
    assert lora.causal_lm_config() == build_config("LORA", lora.peft_fields())
    direct = LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=16.0, lora_dropout=0.05,
        target_modules="all-linear", use_dora=True, bias="none",
    )  # fmt: skip
    assert lora.causal_lm_config().to_dict() == direct.to_dict()
    assert build_config("IA3", {}).to_dict() == IA3Config(task_type="CAUSAL_LM").to_dict()
