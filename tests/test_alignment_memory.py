"""The alignment estimator's terms follow what TRL's preference trainers hold (no run: meta device).
That its static terms equal a real run's is tests/test_alignment.py's (it shares that module's
tiny alignment runs)."""

from __future__ import annotations

import pytest
from helpers import load_specs
from test_alignment import tiny_alignment_suite

from harness.backends import backend_for
from harness.models.architectures import architecture_config


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    """(spec, cuda estimate) per method key of a tiny suite, with a fully fine-tuned DPO."""
    import yaml

    data = tiny_alignment_suite(["dpo", "kto", "orpo", "simpo", "cpo_simpo", "dpo_full"])
    data["methods"]["cpo_simpo"] = {"method": "simpo", "params": {"cpo_alpha": 0.5}}
    data["methods"]["dpo_full"] = {"method": "dpo", "params": {"peft": "full"}}
    data["training"]["precision"] = "fp16"
    path = tmp_path_factory.mktemp("alignmem") / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    _, specs = load_specs(path)
    return {s.method_key: (s, backend_for(s).estimate_memory(s, "cuda")) for s in specs
            if s.method != "reward_model"}  # fmt: skip


def test_terms_follow_what_each_preference_trainer_holds(estimates):
    spec, dpo = estimates["dpo"]
    t = spec.training
    vocab = architecture_config(spec.model)[1].vocab_size
    logits = t.batch_size * t.max_length * vocab  # one row per example, fp16 under autocast
    parts = {key: e.parts for key, (_, e) in estimates.items()}
    # chosen + rejected in one forward: twice KTO's rows, so twice its head and loss
    assert parts["dpo"]["logits_loss"] == 2 * parts["kto"]["logits_loss"] > 0
    assert parts["dpo"]["activations"] > parts["kto"]["activations"] > 0
    # the reference's no-grad logits: DPO's two rows, KTO's completion + KL rows; none without one
    assert parts["dpo"]["nograd_logits"] == parts["kto"]["nograd_logits"] == 2 * logits * 2
    assert parts["orpo"]["nograd_logits"] == parts["simpo"]["nograd_logits"] == 0
    # ORPO's (and CPO-SimPO's) NLL over the chosen rows: logits, upcast, log-softmax, gradient
    assert parts["orpo"]["chosen_nll"] == parts["cpo_simpo"]["chosen_nll"] == logits * (2 + 12)
    assert parts["simpo"]["chosen_nll"] == parts["dpo"]["chosen_nll"] == 0
    # LoRA's reference is the base with the adapter off; full fine-tuning loads a float32 copy
    assert parts["dpo"]["reference_weights"] == 0
    full = estimates["dpo_full"][1]
    assert full.parts["reference_weights"] == 4 * full.params["total_params"]
    assert full.parts["gradients"] == 4 * full.params["trainable_params"]
    for key, p in parts.items():
        assert p["total"] == max(p["train_peak"], p["eval_peak"]), key
        assert p["reward_models"] > 0 and p["start_weights"] > 0, key
        named = ("reference_weights", "nograd_logits", "chosen_nll")
        assert p["train_peak"] > sum(p[k] for k in named), key


def test_each_estimate_says_what_it_models(estimates):
    notes = {key: " ".join(e.assumptions) for key, (_, e) in estimates.items()}
    assert "no reference model" in notes["orpo"] and "no reference model" in notes["simpo"]
    assert "adapter off (no copy)" in notes["dpo"] and "float32 frozen copy" in notes["dpo_full"]
    assert "2 x micro-batch rows in the trained forward" in notes["dpo"]
    assert "1 x micro-batch rows in the trained forward" in notes["kto"]
