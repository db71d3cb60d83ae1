"""What the estimator models of a GPU run, each cause pinned on CPU: CUDA's autocast fp32 ops,
fused dropout and attention, padded batches, bitsandbytes' 4-bit layers and
prepare_model_for_kbit_training, when gradients are alive; calibration bands and verdicts."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig

from harness.backends.sft.memory import Linear4bitFlow, estimate, meta_model
from harness.backends.sft.methods import METHODS
from harness.memory.accuracy import Pair, percentile, summarize
from harness.memory.calibration import Band, band_for, bands_from_pairs, read_bands, write_bands
from harness.memory.cuda_kernels import CudaKernels
from harness.memory.estimate import Estimate, _train_peak, verdict
from harness.suite.spec import TrainingConfig

GQA = dict(
    vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
)  # fmt: skip


def _saved_bytes(fn, *inputs) -> int:
    """Bytes autograd saves (each storage once) while `fn(*inputs)` runs on real tensors."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return sum(seen.values())


def test_cuda_autocast_runs_its_fp32_ops_in_fp32_where_cpu_autocast_does_not():
    x = torch.randn(4, 8, dtype=torch.float16)
    with torch.autocast("cpu", dtype=torch.float16):
        cpu = [F.layer_norm(x, (8,)).dtype, torch.pow(x, 3.0).dtype, F.softmax(x, -1).dtype]
        with CudaKernels():
            cuda = [F.layer_norm(x, (8,)).dtype, torch.pow(x, 3.0).dtype, F.softmax(x, -1).dtype]
            assert torch.tanh(x).dtype == torch.float16  # not on CUDA's fp32 list
    assert cpu == [torch.float16] * 3
    assert cuda == [torch.float32] * 3


def test_fused_dropout_saves_a_one_byte_mask_per_element():
    x = torch.randn(1000, requires_grad=True)  # fp32, as LoRA's dropout sees it
    cpu = _saved_bytes(lambda t: F.dropout(t, 0.1, True), x)
    with CudaKernels():
        cuda = _saved_bytes(lambda t: F.dropout(t, 0.1, True), x)
        out = F.dropout(x, 0.1, True)
    assert (cpu, cuda) == (4 * 1000, 1000)
    out.sum().backward()  # a real autograd graph: native_dropout's backward
    assert x.grad is not None


def test_fused_attention_saves_no_probabilities_with_dropout_or_a_mask():
    b, h, n, d = 2, 4, 128, 8
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))
    mask = torch.ones(n, n, dtype=torch.bool).tril()

    def attend(dropout=0.0, attn_mask=None, is_causal=True):
        return lambda: F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout, is_causal=is_causal
        )

    fused = _saved_bytes(attend())  # q, k, v, output, log-sum-exp
    assert fused < b * h * n * n * 4
    assert _saved_bytes(attend(dropout=0.1)) >= b * h * n * n * 4  # CPU: the math path
    with CudaKernels():
        assert _saved_bytes(attend(dropout=0.1)) == fused
        assert _saved_bytes(attend(attn_mask=mask, is_causal=False)) == fused


def _meta(method, params, training, **kw):
    m = METHODS.get(method)
    return meta_model(
        LlamaConfig(**GQA), m, m.Params.model_validate(params), training, "cuda", **kw
    )


def _gpu_training(**kw) -> TrainingConfig:
    return TrainingConfig(**{"batch_size": 2, "max_length": 32, "precision": "fp16", **kw})


def test_padded_batches_repeat_the_grouped_kv_heads():
    m = METHODS.get("full")

    def activations(padded: bool) -> int:
        found = estimate(LlamaConfig(**GQA), m, m.Params(), _gpu_training(), padded_batches=padded)
        return found.parts["activations"]

    # Without a mask SDPA takes the 2 KV heads as they are; a padding mask makes transformers
    # repeat them to 4 heads: K and V, (4 - 2) heads x 16 dims more each, fp16, per token/block.
    tokens, blocks = 2 * 32, 2
    assert activations(True) - activations(False) == 2 * (4 - 2) * 16 * 2 * tokens * blocks


def test_quantized_layers_have_linear4bit_dtype_flow():
    built = _meta("qlora", {"r": 4}, _gpu_training())
    base = built.model.get_base_model()
    layers = [mod for mod in base.modules() if isinstance(mod, Linear4bitFlow)]
    assert len(layers) == 2 * 7  # q, k, v, o, gate, up, down per block; not the head
    layer = torch.nn.Linear(8, 4)
    layer.__class__ = type("Linear4bit", (Linear4bitFlow, torch.nn.Linear), {})
    layer.compute_dtype = torch.float16
    with torch.autocast("cpu", dtype=torch.float16):
        assert layer(torch.randn(3, 8)).dtype == torch.float32  # cast back to the input's


def test_kbit_preparation_upcasts_what_is_not_4_bit():
    plain = _meta("qlora", {"r": 4}, _gpu_training())
    prepared = _meta("qlora", {"r": 4}, _gpu_training(), kbit_prepared=True)
    embed = prepared.model.get_base_model().get_input_embeddings().weight
    assert embed.dtype == torch.float32
    assert plain.model.get_base_model().get_input_embeddings().weight.dtype == torch.float16
    m = METHODS.get("qlora")
    weights = [
        estimate(LlamaConfig(**GQA), m, m.Params(r=4), _gpu_training(), kbit_prepared=k).parts[
            "weights_frozen"
        ]
        for k in (False, True)
    ]
    # Embedding (tied head) 1000 x 64 and 5 norms of 64: 2 more bytes each.
    assert weights[1] - weights[0] == 2 * (1000 * 64 + 5 * 64)


def test_gradients_meet_activations_only_at_the_head_or_with_accumulation():
    parts = dict(
        activations=100, logits_loss=50, head_gradients=7, gradients=40, step_temporaries=20,
        optimizer=80,
    )  # fmt: skip
    assert _train_peak(parts, static=10, grad_accum=1) == 10 + 80 + 100 + 50 + 7
    assert _train_peak(parts, static=10, grad_accum=2) == 10 + 80 + 40 + 100 + 50
    tiny = dict(parts, activations=1, logits_loss=1)
    assert _train_peak(tiny, static=10, grad_accum=1) == 10 + 80 + 40 + 20  # the step's peak


def test_accuracy_summary():
    pairs = [Pair(f"r{i}", "lora", 100 + i, 100) for i in range(20)]
    assert percentile([abs(p.error) for p in pairs], 95) == pytest.approx(0.18)
    s = summarize(pairs + [Pair("under", "qlora", 90, 110)], limit_bytes=100)
    # Only r0 is right: the others are predicted over 100 but measured at it, "under" the reverse.
    assert s["n"] == 21 and s["verdicts_right"] == 1
    assert s["worst_under_pct"] == pytest.approx(-100 * 20 / 110)
    assert s["median_abs_pct"] == pytest.approx(10.0)


def test_bands_are_never_narrower_than_the_pooled_band(tmp_path):
    pairs = [Pair(f"l{i}", "lora", 100, 100 + i) for i in range(20)]  # up to 19 % more
    pairs += [Pair("q1", "qlora", 100, 100), Pair("q2", "qlora", 100, 101)]
    bands = bands_from_pairs(pairs, "test rows")
    assert bands["lora"].upper == pytest.approx(0.19) and bands["lora"].rows == 20
    assert bands["qlora"].upper == pytest.approx(0.18)  # pooled p95, not its own 1 %
    assert bands["default"].upper == pytest.approx(0.19)
    path = tmp_path / "calibration.json"
    write_bands(path, bands)
    again = read_bands(path)
    assert again["qlora"].rows == 2 and again["qlora"].upper == pytest.approx(0.18)
    assert band_for("ia3", path) == again["default"]
    path.write_text(json.dumps({"lora": {"lower": 0, "upper": 0.1, "rows": 1, "source": "x"}}))
    with pytest.raises(ValueError, match="no `default` band"):
        read_bands(path)


def test_the_band_applies_to_the_uncertain_part_and_decides_the_verdict():
    parts = {"weights_frozen": 800, "optimizer": 0, "total": 1000}
    found = Estimate(parts, {}, "test")
    band = Band(-0.1, 0.2, 3, "test")
    assert band.bounds(1000, 800) == (980, 1040)  # the 800 exact bytes carry no margin
    assert verdict(found, 1050, band=band).fits
    tight = verdict(found, 1020, band=band)
    assert tight.fits is False and tight.margin_bytes == -20  # the estimate alone would fit
    assert "over by" in tight.reason
    assert "fits (margin" in verdict(found, 1040 + 10**9, band=band).reason
    assert verdict(found, None, band=band).to_json()["upper_bytes"] == 1040


# The shipped calibration.json, as benchmarks/memory_h100.py --write-calibration wrote it from the
# 20 H100 rows (update these numbers when the file is rewritten from new measurements).
SHIPPED_BANDS = {  # family: (lower, upper, rows)
    "full": (-0.0293, 0.0635, 5), "freeze": (-0.0144, 0.0856, 2), "lora": (-0.0144, 0.0635, 4),
    "qlora": (-0.0144, 0.0635, 4), "prompt": (-0.0144, 0.0635, 3),
    "prefix": (-0.0144, 0.0635, 2), "default": (-0.0293, 0.0856, 0),
}  # fmt: skip


def test_the_shipped_calibration_has_its_measured_band_for_every_calibrated_family():
    for family, (lower, upper, rows) in SHIPPED_BANDS.items():
        band = band_for(family)
        assert (band.lower, band.upper, band.rows) == (lower, upper, rows), family
        assert band.source.startswith("h100_fp16_calibration.jsonl: 20 H100 rows")
    # a family without rows, and a checkpointed family without a band of its own, fall back
    assert band_for("ia3") == band_for("default")
    assert band_for("lora", checkpointing=True) == band_for("lora")
    # what a verdict then uses: 1 GB exact + 3 GB uncertain under lora's band
    assert band_for("lora").bounds(4 * 10**9, 10**9) == (3_956_800_000, 4_190_500_000)
    # and the default band is the widest of the families on each side (the pooled rows)
    assert band_for("default").lower == min(b[0] for b in SHIPPED_BANDS.values())
    assert band_for("default").upper == max(b[1] for b in SHIPPED_BANDS.values())


def _benchmark(name: str):
    """A script of benchmarks/ as a module (they are not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_the_gpu_grid_expands_to_valid_suites(tmp_path):
    from harness.suite.suite_file import Suite, expand

    bench = _benchmark("memory_gpu")
    suite_dicts = bench.suites(tmp_path)
    specs = [s for d in suite_dicts for s in expand(Suite.model_validate(d))]
    assert len(specs) == sum(len(methods) for _, methods in bench.GRID) == 14
    assert {s.method for s in specs} == set(bench.METHOD_PARAMS)
    assert all(s.model.systems_only == (s.method != "qlora") for s in specs)
    gpt2 = [s for s in specs if s.model.architecture == "gpt2" and s.method == "lora"]
    assert gpt2[0].params["target_modules"] == ["c_attn"]
    assert bench.saved_architectures(suite_dicts) == [
        "qwen2.5-0.5b",
        "smollm2-135m",
        "tinyllama-1.1b",
    ]
    only = bench.suites(tmp_path, {"lora"})
    assert sum(len(d["grid"]["methods"]) for d in only) == 4
    text = bench.report([Pair("a", "lora", 110, 100), Pair("b", "qlora", 90, 100)])
    assert "+10.0%" in text and "median |error| 10.0 %" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_the_gpu_benchmark_refuses_to_run_without_cuda(capsys):
    assert _benchmark("memory_gpu").main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().out


def test_the_h100_rows_become_suite_entries():
    from harness.suite.suite_file import expand

    bench = _benchmark("memory_h100")
    row = {"arch": "gpt2", "method": "qlora", "bs": 4, "seq": 512, "grad_ckpt": True}
    (spec,) = expand(bench.row_suite(row))
    assert spec.training.loss_type == "nll" and spec.training.gradient_checkpointing
    assert spec.params["target_modules"] == ["c_attn"] and spec.training.eval_batch_size == 1


def test_memcheck_states_the_accuracy_bounds_for_gpu_peaks():
    from harness.show.memcheck import Row, format_rows

    rows = [
        Row("a", "s·lora·m", "gpu peak", 105, 100, True),
        Row("b", "s·qlora·m", "gpu peak", 90, 100, True),
        Row("c", "s·full·m", "gpu peak", 200, None, False),  # an oom: no measured peak
    ]
    text = format_rows(rows)
    assert "verdicts right: 2 of 3" in text
    assert "GPU peaks: 2 runs: median |error| 5.0 %, p95 10.0 %" in text
    assert "worst under-prediction -10.0 %" in text
