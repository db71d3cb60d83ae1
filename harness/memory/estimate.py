"""Predict a training run's peak GPU memory from its config: no weights, no GPU.

The run's backend builds the model from its catalogued config on the meta device and sets it up
with the run's own method (harness/backends/sft/memory.py), so LoRA targets and rank, frozen
blocks, virtual tokens... are exactly what the run would train; here its parameters are counted
exactly (4-bit layers at half a byte plus quantization constants, computed).

Activations are traced, not modelled: the fake model runs one training forward pass at the run's
micro-batch and length, with fp16 autocast when the run uses it, and every tensor autograd saves
inside the decoder blocks is counted (once per storage, parameters left out). This captures what
a hand formula misses: a frozen linear layer saves no input, LoRA's dropout keeps a copy per
adapted layer, blocks before the first trainable parameter save nothing, autocast keeps half
copies of fp32 weights. The trace runs CPU kernels: on CPU it is what a real run saves (see
benchmarks/memory_calibration.py); a GPU's kernels (e.g. its attention backend) may save
slightly different tensors. Gradient checkpointing keeps each block's input and recomputes one
block at a time.

The head and loss are counted analytically: TRL's default `chunked_nll` runs the head over 256
tokens at a time; plain `nll` holds batch x length x vocab logits in half precision plus fp32
copies (upcast, saved log-softmax, its gradient) - the term that dominates for 152k-vocabulary
models such as Qwen.

The training peak is taken as weights + gradients + optimizer state + the larger of
(activations + head) and the optimizer step's temporaries: conservative, since gradients
accumulate while activations are being freed. Scoring after training (no autograd, optimizer
state still held) peaks at one batch of logits; the run's peak is the larger of the two.
The allocator's fragmentation and the CUDA context are not included: they are what the
budget's "usable" margin is for.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.memory.calibration import describe, exact_bytes
from harness.memory.cuda_kernels import CudaKernels
from harness.memory.measure import saved_block_bytes
from harness.models.architectures import ArchitectureUnknownError
from harness.models.blocks import transformer_blocks
from harness.models.cache import cache_dir

CHUNKED_HEAD_TOKENS = 256  # trl.trainer.sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE in TRL 1.12
NF4_BLOCK = 64  # bitsandbytes 4-bit block size: one absmax per 64 weights
NF4_NESTED_BLOCK = 256  # double quantization: the absmaxes quantized to 8 bits in blocks of 256

# Optimizer state bytes per trainable parameter (Trainer `optim` names). Unknown names use AdamW.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch": 8, "adamw_torch_fused": 8, "adamw_hf": 8, "paged_adamw_32bit": 8,
    "adamw_bnb_8bit": 2, "adamw_8bit": 2, "paged_adamw_8bit": 2, "lion_8bit": 1,
    "lion_32bit": 4, "adagrad": 4, "rmsprop": 4, "sgd": 0, "adafactor": 0,
}  # fmt: skip

GB = 1e9

# Training knobs that change no memory term, and why (said in every estimate that uses them).
NO_MEMORY_TERM = {
    "neftune_noise_alpha": "NEFTune: no memory term (noise of the embeddings' shape, added in place)",
    "packing": "packing: no memory term (rows stay at most max_length tokens, the bound used here)",
}


class NotEstimated(ArchitectureUnknownError):
    """A run the estimator cannot model (its message says what and why): the budget verdict is
    "unknown" with that reason, which `ftbench plan` prints. A subclass of the error the budget
    planner already turns into a reason (harness/plan/budget.py), so no planner change."""


def _to_fake_cpu(model: Any, mode: Any) -> None:
    """Turn a meta model's parameters and buffers into fake CPU tensors (same shapes, dtypes and
    trainability; tied parameters stay tied), so it runs CPU kernels without memory."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    cpu = torch.device("cpu")
    converted: dict[int, Any] = {}
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None:
                if id(param) not in converted:
                    fake = FakeTensor(mode, param.data, cpu)
                    converted[id(param)] = torch.nn.Parameter(fake, param.requires_grad)
                module._parameters[name] = converted[id(param)]
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                module._buffers[name] = FakeTensor(mode, buffer, cpu)


@dataclass
class Estimate:
    parts: dict[str, int]  # bytes per term, in the order they are explained
    params: dict[str, int]
    architecture: str
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.parts["total"]

    def to_json(self) -> dict[str, Any]:
        return {
            "parts": self.parts,
            "params": self.params,
            "architecture": self.architecture,
            "assumptions": self.assumptions,
        }


def cached_estimate(key: Any, code: Iterable[Path], compute: Callable[[], Estimate]) -> Estimate:
    """`compute()`, kept on disk (ftbench cache/estimates): a plan of a few hundred runs, each run
    process (which records its prediction) and `ls`/`plan`/`run` of the same suite then estimate
    each configuration once. The key holds `key` (what the run sets up), the source of the modules
    the estimate comes from (every file of the harness package, plus `code` for plug-ins outside
    it) and the versions of the libraries it traces, so a change to any of them makes a new
    entry."""

    digest = hashlib.sha256(
        json.dumps([key, _code_version(tuple(sorted(code)))], sort_keys=True, default=str).encode()
    ).hexdigest()
    path = estimate_cache_dir() / f"{digest[:32]}.json"
    try:
        return Estimate(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    found = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(found.to_json()))
    os.replace(tmp, path)  # concurrent writers write the same bytes; readers never see half
    return found


# An estimate imports from memory/, backends/, models/ (shapes in JSON), suite/ (the spec types),
# and a backend's estimate may pull in any module: the whole package's source is in the key, so no
# hand-kept list of modules can leave one out.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def estimate_cache_dir() -> Path:
    """FTBENCH_ESTIMATE_CACHE, else <ftbench cache>/estimates (tests use a folder per session)."""
    env = os.environ.get("FTBENCH_ESTIMATE_CACHE")
    return Path(env) if env else cache_dir() / "estimates"


@functools.cache
def _source_digest(root: Path) -> str:
    """Every .py and .json file under root, by relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json") and p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _code_version(files: tuple[Path, ...]) -> str:
    import importlib.metadata

    digest = hashlib.sha256(_source_digest(SOURCE_ROOT).encode())
    for path in files:
        digest.update(path.read_bytes())
    for package in ("torch", "transformers", "peft", "bitsandbytes"):
        digest.update(importlib.metadata.version(package).encode())
    return digest.hexdigest()


@dataclass
class MetaModel:
    """A model built on the meta device as a run would set it up (PEFT wrapping included)."""

    model: Any
    trains: bool  # False: a baseline that only evaluates
    weights_dtype: str  # the dtype the base weights are loaded in
    quantization: Any = None  # the BitsAndBytesConfig the model was loaded with, if any
    virtual_tokens: int = 0  # prompt tuning's extra positions
    setup_key: str = ""  # what determines the traced activations besides config and length
    # Batches padded to their longest sequence come with an attention mask: transformers then
    # materializes a mask and repeats grouped KV heads for SDPA (no GQA fast path).
    padded_batches: bool = True


def estimate_model(
    built: MetaModel, training: Any, *, device: str = "cuda", architecture: str = ""
) -> Estimate:
    """Weights, gradients, optimizer state, traced activations, head and loss of `built` trained
    with `training` on `device` ("cuda": the run's precision; "cpu": fp32 everywhere, as ftbench
    trains on CPU, which makes the static terms checkable byte for byte)."""
    precision = training.precision if device == "cuda" else "fp32"
    amp = precision != "fp32"
    model, virtual_tokens = built.model, built.virtual_tokens
    notes: list[str] = []

    weights = _weight_bytes(model, built.quantization)
    trainable = [p for p in unique_params(model) if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    # Trained parameters are fp32 (master weights / PEFT's fp32 adapters): grads are fp32 too.
    grads = 4 * n_trainable if built.trains else 0
    state_per_param = OPTIMIZER_STATE_BYTES.get(training.optimizer, 8)
    if training.optimizer not in OPTIMIZER_STATE_BYTES:
        notes.append(f"optimizer {training.optimizer!r} not modelled: assumed AdamW (8 B/param)")
    optimizer = state_per_param * n_trainable if built.trains else 0
    step_temporaries = 4 * n_trainable if built.trains and state_per_param else 0

    act_bytes = 2 if amp else 4
    config = model.config if not hasattr(model, "get_base_model") else model.get_base_model().config
    hidden, vocab = config.hidden_size, config.vocab_size
    activations = head = 0
    tokens = training.batch_size * (training.max_length + virtual_tokens)
    if built.trains:
        gpu = device == "cuda"
        trace_key = json.dumps(
            [config.to_dict(), built.setup_key, built.weights_dtype, precision,
             training.max_length, gpu, built.padded_batches],
            sort_keys=True, default=str,
        )  # fmt: skip
        activations = _activation_bytes(
            model, training, precision, virtual_tokens, trace_key, (gpu, built.padded_batches)
        )
        head = _head_bytes(training.loss_type, tokens, hidden, vocab, act_bytes)
    static = weights["frozen"] + weights["trainable"] + weights["quant_constants"]
    # Scoring (after training; the optimizer state is still held) runs without autograd: its
    # largest tensor is one batch of logits in the model's dtype.
    eval_logits = training.eval_batch_size * (training.max_length + virtual_tokens) * vocab
    eval_logits *= act_bytes
    parts = {
        "weights_frozen": weights["frozen"],
        "weights_trainable": weights["trainable"],
        "quant_constants": weights["quant_constants"],
        "gradients": grads,
        "optimizer": optimizer,
        "activations": activations,
        "logits_loss": head,
        "step_temporaries": step_temporaries,
        "eval_logits": eval_logits,
    }
    parts["head_gradients"] = 4 * _head_trainable(model) if built.trains else 0
    parts["train_peak"] = _train_peak(parts, static, training.grad_accum) if built.trains else 0
    parts["eval_peak"] = static + optimizer + eval_logits
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])
    counts = {
        "total_params": sum(p.numel() for p in unique_params(model)),
        "trainable_params": n_trainable,
        "quantized_params": weights["quantized_params"],
        "tokens_per_micro_batch": tokens,
    }
    notes += [why for knob, why in NO_MEMORY_TERM.items() if getattr(training, knob, None)]
    notes.append(
        f"{precision} ({'autocast, ' if amp else ''}weights loaded as {built.weights_dtype}); "
        f"loss {training.loss_type or 'chunked_nll'}; sequences padded to max_length"
    )
    return Estimate(parts, counts, architecture, notes)


def _train_peak(parts: dict[str, int], static: int, grad_accum: int) -> int:
    """The larger of the two moments a training step peaks at.

    Backward starts with every saved activation alive, the loss's logits at their largest and
    the gradients of the head (and a tied embedding) just allocated; the other gradients appear
    block by block as each block's activations are freed. At the optimizer step every gradient
    is alive, plus the step's temporaries. Gradients are set to None after each step, so with
    one micro-batch per step they do not coexist with the next forward's activations; with
    accumulation they do, all of them.
    """
    held = static + parts["optimizer"]
    flowing = parts["activations"] + parts["logits_loss"]
    at_step = parts["gradients"] + parts["step_temporaries"]
    if grad_accum > 1:
        return held + parts["gradients"] + max(flowing, parts["step_temporaries"])
    return held + max(flowing + parts["head_gradients"], at_step)


def _head_trainable(model: Any) -> int:
    """Trainable parameters whose gradients backward computes first: the output head (a tied
    input embedding included) and the final norm."""
    head = {id(p): p for p in _output_head(model).parameters()}
    for name, param in model.named_parameters():
        if name.rsplit(".", 2)[-2:-1] in (["norm"], ["ln_f"]):
            head[id(param)] = param
    return sum(p.numel() for p in head.values() if p.requires_grad)


def _output_head(model: Any) -> Any:
    """The output layer: the LM head, or a sequence classifier's (reward and value models)."""
    output = model.get_output_embeddings()
    if output is None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        output = getattr(base, "score", None) or getattr(base, "classifier", None)
    if output is None:
        raise NotEstimated(f"not estimated: no output layer found on {type(model).__name__}")
    return output


def unique_params(model: Any) -> list[Any]:
    return list({id(p): p for p in model.parameters()}.values())


@contextlib.contextmanager
def _positions_in_order() -> Iterator[None]:
    """`torch.randperm(n)` answers `arange(n)` while adapters are built for a trace: layers
    that draw random positions at init (FourierFT permutes in x out entries of every target, a
    second per layer of a 7B model, on the CPU even for a meta model) keep their shapes, which is
    all an estimate reads, and `ftbench plan` does not spend minutes shuffling. Patched on the
    module for the duration (a TorchFunctionMode would tax every other call as much)."""
    from unittest import mock

    import torch

    def in_order(n, *args, dtype=None, device=None, **kwargs):
        return torch.arange(n, dtype=dtype or torch.long, device=device)

    with mock.patch.object(torch, "randperm", in_order):
        yield


def apply_peft(model: Any, peft_config: Any) -> tuple[Any, int]:
    """Wrap a meta model with the run's PEFT config; text-initialised prompts (which would need a
    tokenizer and real embeddings) are counted with random init: same shapes."""
    from peft import get_peft_model

    peft_config = copy.deepcopy(peft_config)
    if getattr(peft_config, "prompt_tuning_init", None) is not None:
        peft_config.prompt_tuning_init = "RANDOM"
        peft_config.prompt_tuning_init_text = None
    if getattr(peft_config, "init_lora_weights", True) not in (True, False):
        peft_config.init_lora_weights = True  # PiSSA/OLoRA factorise real weights: same shapes
    with _positions_in_order():
        wrapped = get_peft_model(model, peft_config)
    extends_sequence = peft_config.is_prompt_learning and peft_config.peft_type != "PREFIX_TUNING"
    return wrapped, peft_config.num_virtual_tokens if extends_sequence else 0


def is_quantizable_linear(module: Any, base: Any) -> bool:
    """bitsandbytes quantizes the nn.Linear layers of a model except its output head."""
    import torch

    return isinstance(module, torch.nn.Linear) and module is not base.get_output_embeddings()


def _weight_bytes(model: Any, quantization: Any) -> dict[str, int]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    quantized: set[int] = set()
    int8 = quantization is not None and getattr(quantization, "load_in_8bit", False)
    if quantization is not None and (int8 or getattr(quantization, "load_in_4bit", False)):
        quantized = {
            id(m.weight)
            for m in base.modules()
            if is_quantizable_linear(m, base) and not m.weight.requires_grad
        }
    out = {"frozen": 0, "trainable": 0, "quant_constants": 0, "quantized_params": 0}
    for p in unique_params(model):
        n = p.numel()
        if id(p) in quantized and int8:  # LLM.int8: a byte a weight, an fp32 scale per row
            out["frozen"] += n
            out["quantized_params"] += n
            out["quant_constants"] += 4 * p.shape[0]
        elif id(p) in quantized:
            out["frozen"] += n // 2  # two 4-bit weights per byte
            out["quantized_params"] += n
            blocks = -(-n // NF4_BLOCK)
            if quantization.bnb_4bit_use_double_quant:  # + the nested 256-entry fp32 code book
                out["quant_constants"] += blocks + 4 * -(-blocks // NF4_NESTED_BLOCK) + 4 * 256
            else:
                out["quant_constants"] += 4 * blocks
        elif p.requires_grad:
            out["trainable"] += 4 * n
        else:
            out["frozen"] += n * p.element_size()
    return out


def _activation_bytes(
    model: Any,
    training: Any,
    precision: str,
    virtual_tokens: int,
    trace_key: str,
    how: tuple[bool, bool],
) -> int:
    """What autograd saves inside the decoder blocks for one micro-batch: traced, not modelled.

    The run's own (PEFT-wrapped) model runs a training forward pass on fake tensors, with
    autocast as the run would use it, and the saved tensors are counted per block
    (harness.memory.measure.saved_block_bytes). Gradient checkpointing keeps each block's input and
    recomputes one block at a time.
    """
    if trace_key not in _TRACES:
        _TRACES[trace_key] = _trace_batches_1_and_2(model, training.max_length, precision, *how)
    one, two = _TRACES[trace_key]
    # Saved tensors are affine in the batch size (activations grow with it; autocast's weight
    # copies and DoRA's weight-sized terms do not): batch 1 and 2 give every batch size, so the
    # budget's adjustments cost no further trace.
    batch = training.batch_size
    flowing = [a + (batch - 1) * (b - a) for a, b in zip(one, two, strict=True) if a or b]
    if not flowing:
        return 0
    if training.gradient_checkpointing:
        embeddings = model.get_input_embeddings().weight
        tokens = batch * (training.max_length + virtual_tokens)
        block_input = tokens * embeddings.shape[1] * embeddings.element_size()
        return len(flowing) * block_input + max(flowing)
    return sum(flowing)


_TRACES: dict[str, tuple[list[int], list[int]]] = {}  # trace key -> saved bytes at batch 1 and 2


def _trace_batches_1_and_2(
    model: Any, length: int, precision: str, gpu: bool, padded: bool
) -> tuple[list[int], list[int]]:
    """Saved bytes per block at batch 1 and at batch 2. The model moves to fake CPU tensors once;
    blocks that would save the same (same parameters trainable, same gradient flowing in) are
    traced once and counted for each of them. `gpu`: CUDA's autocast lists, dropout and attention
    kernels (harness/memory/cuda_kernels.py) instead of the CPU's. `padded`: with an attention
    mask that masks one position, as a batch padded to its longest sequence has."""
    import contextlib

    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    container = transformer_blocks(model)
    original = list(container)
    groups = _block_groups(model, original)
    representatives = [original[start] for start, _ in groups]
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    mode = FakeTensorMode(allow_non_fake_inputs=True)  # e.g. PEFT keeps index tensors as attributes
    _to_fake_cpu(model, mode)
    model.train()

    def trace(batch: int) -> list[int]:
        with mode:
            ids = torch.zeros((batch, length), dtype=torch.long)
            mask = None
            if padded:
                mask = torch.ones((batch, length), dtype=torch.long)
                mask[0, -1] = 0

            def forward() -> None:
                kernels = CudaKernels() if gpu else contextlib.nullcontext()
                with (
                    torch.autocast("cpu", dtype=half or torch.float32, enabled=half is not None),
                    kernels,
                ):
                    model(input_ids=ids, attention_mask=mask)

            traced = saved_block_bytes(model, representatives, forward)
        return [size for size, (_, count) in zip(traced, groups, strict=True) for _ in range(count)]

    try:
        _set_blocks(container, representatives)  # shapes are preserved block to block
        return trace(1), trace(2)
    finally:
        _set_blocks(container, original)


def _set_blocks(container: Any, blocks: list[Any]) -> None:
    container._modules.clear()
    for index, block in enumerate(blocks):
        container._modules[str(index)] = block


def _block_groups(model: Any, blocks: list[Any]) -> list[tuple[int, int]]:
    """Runs of consecutive blocks with the same trainable parameters and the same answer to
    "does a gradient flow into it" (a trainable parameter before it): (first index, count)."""
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    # The untied head and the final norm train without a gradient through the blocks; a tied
    # head is the input embedding, which does need one.
    inputs = {id(p) for p in model.get_input_embeddings().parameters()}
    head = {id(p) for p in _output_head(model).parameters()} - inputs
    head |= {id(p) for n, p in model.named_parameters() if n.rsplit(".", 2)[-2:-1] == ["norm"]}
    flowing = any(
        p.requires_grad and id(p) not in in_blocks and id(p) not in head for p in model.parameters()
    )
    groups: list[tuple[int, int]] = []
    previous = None
    for index, block in enumerate(blocks):
        trainable = tuple(p.requires_grad for p in block.parameters())
        # The first block is its own group: trainable parameters outside the blocks may enter
        # at its input (prompt tuning) or inside its attention (prefix tuning).
        signature = (index == 0, flowing, trainable)
        if signature == previous:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((index, 1))
        previous = signature
        flowing = flowing or any(trainable)
    return groups


def _head_bytes(loss_type: str | None, tokens: int, hidden: int, vocab: int, act: int) -> int:
    """The final hidden states kept for the head, plus the logits the loss needs at its peak."""
    # Half logits; fp32 upcast, saved log-softmax, its gradient. Checked on the H100 table
    # (benchmarks/memory_h100.py): between its bs4x512 and bs8x1024 freeze rows, whose blocks
    # save little, the peak grows by 14.0 bytes per logit.
    per_logit = act + 3 * 4
    if (loss_type or "chunked_nll") == "chunked_nll":
        return tokens * hidden * act + min(tokens, CHUNKED_HEAD_TOKENS) * vocab * per_logit
    return tokens * hidden * act + tokens * vocab * per_logit


@dataclass
class Verdict:
    fits: bool | None  # None: no estimate (unknown architecture) or no budget
    predicted_bytes: int | None
    limit_bytes: int | None
    reason: str
    # The estimate's uncertainty band (harness/memory/calibration.py): fits means upper <= limit.
    lower_bytes: int | None = None
    upper_bytes: int | None = None
    band: dict[str, Any] | None = None

    @property
    def margin_bytes(self) -> int | None:
        """Room left under the limit at the band's upper bound (negative: over)."""
        if self.upper_bytes is None or self.limit_bytes is None:
            return None
        return self.limit_bytes - self.upper_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "predicted_bytes": self.predicted_bytes,
            "lower_bytes": self.lower_bytes,
            "upper_bytes": self.upper_bytes,
            "margin_bytes": self.margin_bytes,
            "band": self.band,
            "limit_bytes": self.limit_bytes,
            "reason": self.reason,
        }


def verdict(
    estimate_: Estimate | None, limit_bytes: int | None, why_none: str = "", band: Any = None
) -> Verdict:
    """Fit or not against `limit_bytes`, decided by the upper bound of `band` (a
    calibration.Band; None: the estimate itself, no band)."""

    if estimate_ is None:
        return Verdict(None, None, limit_bytes, why_none or "no estimate")
    total = estimate_.total
    exact = exact_bytes(estimate_.parts)
    lower, upper = band.bounds(total, exact) if band is not None else (total, total)
    extra = dict(lower_bytes=lower, upper_bytes=upper, band=describe(band) if band else None)
    spread = f" (band {lower / GB:.2f}-{upper / GB:.2f})" if band is not None else ""
    if limit_bytes is None:
        return Verdict(
            None, total, None, f"predicted {total / GB:.2f} GB{spread}; no budget", **extra
        )
    fits = upper <= limit_bytes
    margin = (limit_bytes - upper) / GB
    relation = f"fits (margin {margin:.1f} GB)" if fits else f"over by {-margin:.1f} GB"
    return Verdict(
        fits,
        total,
        limit_bytes,
        f"predicted {total / GB:.2f} GB{spread} against {limit_bytes / GB:.1f} GB: {relation}",
        **extra,
    )
