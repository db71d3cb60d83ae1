"""The T4 memory budget: catalogue, estimator terms, verdicts, adjust/skip, CPU calibration."""

from __future__ import annotations

import pytest
import torch
from helpers import suite_dict
from transformers import LlamaConfig

from harness import store
from harness.backends.sft.memory import estimate
from harness.backends.sft.methods import METHODS
from harness.models.architectures import catalogue, config_from_dict
from harness.plan.budget import BudgetPlanner
from harness.plan.plan import make_plan
from harness.run.lifecycle import execute
from harness.run.runner import run_plan
from harness.show.memcheck import collect, summarize
from harness.suite.spec import TrainingConfig
from harness.suite.suite_file import Suite, expand

# Published parameter counts (model cards / papers): the catalogue's shapes must reproduce them.
PUBLISHED_PARAMS = {
    "gpt2": 124_439_808,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "tinyllama-1.1b": 1_100_048_384,
    "llama-2-7b": 6_738_415_616,
    "mistral-7b": 7_241_732_096,
}
SMALL = dict(
    vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
)  # fmt: skip


def _small_params(h=64, i=128, layers=2, vocab=1000, kv=32) -> int:
    """Llama parameter count by hand: embeddings (tied head), q/o (h x h), k/v (h x kv), gated MLP
    (3 h x i), two norms per block and a final norm."""
    return vocab * h + layers * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + h


def _training(**kw) -> TrainingConfig:
    return TrainingConfig(**{"batch_size": 2, "max_length": 16, **kw})


def _estimate(
    method: str, params: dict | None = None, config=None, device="cpu", padded=True, **training
):
    m = METHODS.get(method)
    return estimate(
        config or LlamaConfig(**SMALL),
        m,
        m.Params.model_validate(params or {}),
        _training(**training),
        device=device,
        padded_batches=padded,
    )


def test_catalogue_reproduces_published_parameter_counts():
    assert set(PUBLISHED_PARAMS) <= set(catalogue())
    for name, expected in PUBLISHED_PARAMS.items():
        with torch.device("meta"):
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_config(config_from_dict(catalogue()[name]["config"]))
        assert sum(p.numel() for p in model.parameters()) == expected, name


@pytest.mark.parametrize(
    "method,params,becomes_not_estimated",
    [
        ("full", {}, False),
        ("lora", {"r": 4}, False),
        ("peft", {"peft_type": "VERA", "config": {"r": 4}}, False),
        ("peft", {"peft_type": "LOHA", "config": {"r": 4, "target_modules": ["q_proj"]}}, True),
    ],
    ids=["full", "lora", "vera", "loha"],
)
def test_a_trace_error_is_a_bug_except_for_unchecked_peft_types(
    method, params, becomes_not_estimated, monkeypatch
):
    """Only PEFT types the estimator has not been checked on may answer "not estimated"; for the
    others an error in the estimate surfaces (it is an estimator bug, not a reason)."""
    from harness.backends.sft import memory
    from harness.memory.estimate import NotEstimated

    def broken(*args, **kwargs):
        raise RuntimeError("an estimator bug")

    monkeypatch.setattr(memory, "estimate_model", broken)
    monkeypatch.setattr(memory, "UNTRACEABLE_PEFT_TYPES", frozenset())  # LOHA: a type not checked
    if becomes_not_estimated:
        with pytest.raises(NotEstimated, match=r"not estimated: .* PEFT type LOHA .*estimator bug"):
            _estimate(method, params)
    else:
        with pytest.raises(RuntimeError, match="an estimator bug") as raised:
            _estimate(method, params)
        assert not isinstance(raised.value, NotEstimated)


@pytest.mark.parametrize("peft_type", ["LOHA", "LOKR", "BOFT"])
def test_the_types_answered_untraceable_up_front_do_fail_the_trace(peft_type, monkeypatch):
    """The estimator answers these before building their adapters; traced anyway, each fails."""
    from harness.backends.sft import memory
    from harness.memory.estimate import NotEstimated

    params = {"peft_type": peft_type, "config": {"target_modules": ["q_proj"]}}
    if peft_type == "BOFT":
        params["config"]["boft_block_size"] = 4
    with pytest.raises(NotEstimated, match="data-dependent"):
        _estimate("peft", params)
    monkeypatch.setattr(memory, "UNTRACEABLE_PEFT_TYPES", frozenset())
    with pytest.raises(NotEstimated, match=rf"cannot trace PEFT type {peft_type} \("):
        _estimate("peft", params)


def test_full_finetuning_static_terms_match_hand_sums():
    n = _small_params()
    parts = _estimate("full").parts
    assert parts["weights_trainable"] == 4 * n and parts["weights_frozen"] == 0
    assert parts["gradients"] == 4 * n
    assert parts["optimizer"] == 8 * n  # AdamW: two fp32 moments
    assert _estimate("full", optimizer="sgd").parts["optimizer"] == 0


def test_lora_counts_rank_times_in_plus_out_of_each_target():
    h, kv, r = 64, 32, 4
    parts = _estimate("lora", {"r": r, "target_modules": ["q_proj", "v_proj"]}).parts
    lora = 2 * (r * (h + h) + r * (h + kv))  # two blocks x (q: h->h, v: h->kv)
    assert parts["weights_trainable"] == 4 * lora
    assert parts["gradients"] == 4 * lora and parts["optimizer"] == 8 * lora
    assert parts["weights_frozen"] == 4 * _small_params()  # fp32 on CPU


def test_qlora_weights_are_half_a_byte_plus_quantization_constants():
    h, i, kv, layers = 64, 128, 32, 2
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * i)  # every block linear is quantized
    parts = _estimate("qlora", {"r": 4}, device="cuda", precision="fp16").parts
    blocks = linear // 64  # (each of these layers is a multiple of 64 wide)
    assert parts["quant_constants"] > 0
    others = _small_params() - linear  # embeddings and norms stay in fp16
    assert parts["weights_frozen"] == linear // 2 + 2 * others
    # Double quantization: one byte per 64-block absmax, plus (per tensor) fp32 per 256 absmaxes
    # and the nested fp32 code book of 256 entries.
    assert blocks + 14 * 1024 <= parts["quant_constants"] <= blocks + 14 * (4 + 1024)


def test_activations_of_full_finetuning_match_the_hand_sum():
    """fp32 Llama block, gradient flowing in, every weight trained, per token: each RMSNorm keeps
    its input, its normalised value and its output (3 x 4h, twice); q/k/v share one input;
    attention keeps q (4h), k and v (4 kv each, not repeated), its output (4h, also o_proj's
    input) and log-sum-exp (4 per head); the MLP keeps gate, SiLU, up and their product
    (4 x 4i); plus two rsqrt scalars (2 x 4). RoPE's cos and sin (2 x 4 head_dim) are per
    position, shared by the batch. Unpadded: no attention mask, so SDPA takes grouped KV heads
    as they are (tests/test_memory_gpu_model.py pins what a padded batch adds)."""
    h, kv, head_dim, i, heads = 64, 32, 16, 128, 4
    per_token = 2 * 3 * 4 * h + 2 * 4 * h + 2 * 4 * kv + 4 * heads + 4 * 4 * i + 2 * 4
    batch, length = 2, 16  # the _training default
    per_block = batch * length * per_token + length * 2 * 4 * head_dim
    assert _estimate("full", padded=False).parts["activations"] == 2 * per_block  # two blocks


@pytest.mark.parametrize(
    "method,params",
    [("full", {}), ("freeze", {"n_layers": 1, "train_head": False}), ("lora", {"r": 4}),
     ("ia3", {}), ("prompt", {"num_virtual_tokens": 4, "init": "random"}),
     ("prefix", {"num_virtual_tokens": 4}), ("ln_tuning", {})],
)  # fmt: skip
def test_traced_activations_equal_what_a_real_cpu_forward_saves(method, params):
    """The estimator traces fake tensors; a real model set up by the same method, measured with
    saved-tensor hooks on a real forward pass, saves exactly as much (batch 3: extrapolated from
    the traces at 1 and 2)."""
    from harness.backends.sft.memory import measured_activation_bytes

    config = LlamaConfig(**{**SMALL, "num_hidden_layers": 3})
    m = METHODS.get(method)
    measured = measured_activation_bytes(config, m, m.Params.model_validate(params), 3, 16)
    predicted = _estimate(method, params, config=config, batch_size=3).parts["activations"]
    assert measured == predicted > 0


def test_checkpointing_and_chunked_loss_shrink_what_they_should():
    smol = config_from_dict(catalogue()["smollm2-135m"]["config"])  # 30 blocks, 49152 vocab
    run = dict(config=smol, device="cuda", precision="fp16", batch_size=8, max_length=512)
    plain = _estimate("lora", **run)
    ckpt = _estimate("lora", **run, gradient_checkpointing=True)
    # Checkpointing keeps each block's input plus one block being recomputed.
    assert ckpt.parts["activations"] < plain.parts["activations"] / 5
    nll = _estimate("lora", **run, loss_type="nll")
    tokens = 8 * 512
    # nll: half logits + fp32 upcast, saved log-softmax and gradient = 14 bytes per logit,
    # where chunked_nll holds 256 tokens' worth.
    assert nll.parts["logits_loss"] - plain.parts["logits_loss"] == 14 * 49152 * (tokens - 256)


def _seven_b_verdict(method: str, params: dict, **training) -> bool:
    m = METHODS.get(method)
    found = estimate(
        config_from_dict(catalogue()["llama-2-7b"]["config"]),
        m,
        m.Params.model_validate(params),
        TrainingConfig(precision="fp16", max_length=512, **training),
        device="cuda",
    )
    return found.total <= 15e9


def test_known_t4_verdicts_for_a_7b_model():
    # fp16 LoRA on 7B without checkpointing: 13.5 GB of weights plus activations -> no.
    assert not _seven_b_verdict("lora", {"r": 16}, batch_size=4)
    # 4-bit QLoRA with checkpointing at 4 x 512 -> yes (the usual T4 recipe).
    assert _seven_b_verdict("qlora", {"r": 16}, batch_size=4, gradient_checkpointing=True)
    assert not _seven_b_verdict("full", {}, batch_size=1, gradient_checkpointing=True)


def budget_suite(over_budget: str | None, gpu_mem_gb: float, **training) -> dict:
    """The tiny suite, full fine-tuning at 8 x 2 (micro-batch x accumulation), under a custom
    budget small enough to matter for a tiny model."""
    data = suite_dict()
    data["budget"] = {"profile": "custom", "gpu_mem_gb": gpu_mem_gb}
    if over_budget:
        data["budget"]["over_budget"] = over_budget
    data["training"].update({"batch_size": 8, "grad_accum": 2, "max_length": 128, **training})
    data["methods"] = {"full": {}}
    data["grid"]["methods"] = ["full"]
    return data


def test_adjust_keeps_the_effective_batch_and_records_each_change():
    (spec,) = expand(Suite.model_validate(budget_suite("adjust", 0.006)))
    run = BudgetPlanner().fit(spec)
    assert run.verdict.fits, run.verdict.reason
    t = run.spec.training
    assert t.gradient_checkpointing and t.batch_size < 8
    assert t.batch_size * t.grad_accum == 8 * 2
    assert run.spec.budget_adjustments == run.adjustments and run.adjustments
    assert run.spec.run_id != spec.run_id  # the adjusted config is what is recorded and hashed


def test_skip_records_over_budget_with_the_numbers(tmp_path, write_suite):
    plan = make_plan(write_suite(budget_suite(None, 0.001)))
    (run,) = plan.runs
    assert run.over_budget and run.preset[0] == "over_budget"
    db = tmp_path / "r.duckdb"
    run_plan(plan, results_dir=tmp_path, db_path=db)
    with store.connect(db, read_only=True) as con:
        status, reason, train_s = con.execute("SELECT status, reason, train_s FROM runs").fetchone()
    assert status == "over_budget" and "over by" in reason and "0.0 GB" in reason
    assert train_s is None  # recorded, never started


def test_cpu_run_measures_exactly_the_predicted_static_bytes(tmp_path):
    """Weights, gradients and optimizer state are exact on CPU: measured after the first optimizer
    step of a real run, they equal the estimator's fp32 CPU prediction byte for byte."""
    cases = (("full", {}), ("lora", {"r": 4}), ("freeze", {"n_layers": 1}), ("qlora", {"r": 4}))
    for method, params in cases:
        data = suite_dict(methods={"m": {"method": method, "params": params}})
        data["grid"]["methods"] = ["m"]
        (spec,) = expand(Suite.model_validate(data))
        memory = execute(spec, tmp_path / method).result.train_info.memory
        measured = memory.measured_state
        predicted = memory.estimate["cpu"]["parts"]
        assert measured["gradients"] == predicted["gradients"] > 0, method
        assert measured["optimizer"] == predicted["optimizer"] > 0, method
        assert measured["weights_trainable"] == predicted["weights_trainable"], method
        frozen = predicted["weights_frozen"] + predicted["quant_constants"]
        # bitsandbytes keeps a few small extras per 4-bit tensor (its 16-entry code, an offset).
        assert measured["weights_frozen"] == pytest.approx(
            frozen, rel=0.005 if method == "qlora" else 0
        ), method
        assert memory.estimate["cuda"]["parts"]["total"] > 0


def test_memcheck_and_systems_only_runs_in_duckdb(tmp_path, monkeypatch, write_suite):
    data = suite_dict()
    data["models"]["tiny"]["weights"] = "random"
    db = tmp_path / "r.duckdb"
    report = run_plan(make_plan(write_suite(data)), results_dir=tmp_path, db_path=db)
    assert report.statuses == {"ok": 1}
    rows = collect(db)
    assert {r.kind for r in rows} >= {"cpu weights", "cpu gradients", "cpu optimizer"}
    assert all(r.error == 0 for r in rows)
    assert summarize(rows)["within_10pct"] == len(rows)
    with store.connect(db, read_only=True) as con:
        splits = {s for (s,) in con.execute("SELECT DISTINCT split FROM metrics").fetchall()}
        systems_only = con.execute("SELECT systems_only FROM memory").fetchone()[0]
    assert splits == {store.SYSTEMS_ONLY_SPLIT} and systems_only
    assert store.leaderboard(db, "tiny").empty  # never ranked on quality

    from test_dashboard import open_page, texts

    at = open_page(db, "memory", monkeypatch)
    page = texts(at)
    assert "mean |error| 0.00%" in page and "Systems-only runs" in page
    assert len(at.get("vega_lite_chart")) == 1  # predicted vs measured, above the table
    assert at.dataframe[0].value["method"].tolist() == ["lora"] * 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_peak_is_within_the_target_of_the_estimate(tmp_path):
    data = suite_dict(models={"smol": {"asset": "smollm2-135m-instruct"}})
    data["grid"]["models"] = ["smol"]
    data["training"].update(precision="fp16", batch_size=4, max_length=256, max_steps=3)
    (spec,) = expand(Suite.model_validate(data))
    memory = execute(spec, tmp_path).result.train_info.memory
    predicted = memory.estimate["cuda"]["parts"]["total"]
    measured = memory.cuda_max_allocated
    assert abs(predicted - measured) / measured <= 0.10, (predicted, measured)
