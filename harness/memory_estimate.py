"""Predict a training run's peak GPU memory from its config: no weights, no GPU.

The model is built on the meta device from its catalogued config and handed to the run's own
method (so LoRA targets, frozen blocks, virtual tokens... are exactly what the run would train);
parameters are then counted exactly. Activations are an analytical model of what autograd saves
per token in each decoder block under fp16 autocast:

- a linear layer saves its (half-precision) input only if its weight trains: a frozen base saves
  nothing for its matmuls, which is why LoRA and freeze need far fewer activations than full FT;
- each norm saves its fp32 upcast input (and its normalised output when its weight trains);
- attention saves q, k, v and its output (k and v repeated to every head), plus the
  heads x length score matrices with eager attention;
- the MLP's activation function and gating product save their inputs;
- blocks before the first trainable parameter save nothing (no gradient flows through them);
- gradient checkpointing keeps each block's input and recomputes one block at a time.

The head and loss: TRL's default `chunked_nll` runs the head over 256 tokens at a time; plain
`nll` holds batch x length x vocab logits in half precision plus fp32 copies (upcast, saved
log-softmax, its gradient) - the term that dominates for 152k-vocabulary models such as Qwen.

The training peak is taken as weights + gradients + optimizer state + the larger of
(activations + head) and the optimizer step's temporaries: conservative, since gradients
accumulate while activations are being freed. Scoring after training (no autograd, optimizer
state still held) peaks at one batch of logits; the run's peak is the larger of the two. The allocator's fragmentation and the CUDA context are not
included: they are what the budget's "usable" margin is for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.architectures import architecture_config
from harness.methods.base import Method, MethodContext, load_dtype
from harness.models import ResolvedModel

CHUNKED_HEAD_TOKENS = 256  # trl.trainer.sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE in TRL 1.12
NF4_BLOCK = 64  # bitsandbytes 4-bit block size: one absmax per 64 weights
NF4_NESTED_BLOCK = 256  # double quantization: the absmaxes quantized to 8 bits in blocks of 256

# Optimizer state bytes per trainable parameter (Trainer `optim` names). Unknown names use AdamW.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch": 8, "adamw_torch_fused": 8, "adamw_hf": 8, "paged_adamw_32bit": 8,
    "adamw_bnb_8bit": 2, "adamw_8bit": 2, "paged_adamw_8bit": 2, "lion_8bit": 1,
    "lion_32bit": 4, "adagrad": 4, "rmsprop": 4, "sgd": 0, "adafactor": 0,
}  # fmt: skip
# Saved tensors of the MLP activation function, in units of the intermediate width.
ACTIVATION_SAVES = {"gelu_new": 4}  # gelu_new is composed of Python-level ops; others save 1

GB = 1e9


class _MetaContext(MethodContext):
    """What a method sees when it is set up for an estimate: load_model builds on meta."""

    def __init__(self, config: Any, weights_dtype: str) -> None:
        placeholder = ResolvedModel(location="(meta device: no files)", revision=None)
        super().__init__(placeholder, tokenizer=None, device="cuda", weights_dtype=weights_dtype)
        self.config = config
        self.quantization: Any = None

    def load_model(self, **kwargs: Any) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        self.quantization = kwargs.get("quantization_config")
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(
                self.config, dtype=getattr(torch, self.weights_dtype)
            )


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


def estimate_spec(spec: Any, device: str = "cuda") -> Estimate:
    """The estimate for one RunSpec on `device` ("cuda": the run as on a GPU with its precision;
    "cpu": fp32 everywhere, as ftbench trains on CPU - used to check the exact terms)."""
    from harness.backends import method_for

    source, config = architecture_config(spec.model)
    method = method_for(spec)
    params = method.Params.model_validate(spec.params)
    return estimate(config, method, params, spec.training, device=device, architecture=source)


def estimate(
    config: Any,
    method: Method,
    params: Any,
    training: Any,
    *,
    device: str = "cuda",
    architecture: str = "",
) -> Estimate:

    precision = training.precision if device == "cuda" else "fp32"
    amp = precision != "fp32"
    ctx = _MetaContext(config, load_dtype(method, device, precision))
    setup = method.setup(ctx, params)
    model = setup.model
    virtual_tokens = 0
    if setup.peft_config is not None:
        model, virtual_tokens = _apply_peft(model, setup.peft_config)
    notes: list[str] = []

    weights = _weight_bytes(model, ctx.quantization)
    trainable = [p for p in _unique_params(model) if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    # Trained parameters are fp32 (master weights / PEFT's fp32 adapters): grads are fp32 too.
    grads = 4 * n_trainable if method.trains else 0
    state_per_param = OPTIMIZER_STATE_BYTES.get(training.optimizer, 8)
    if training.optimizer not in OPTIMIZER_STATE_BYTES:
        notes.append(f"optimizer {training.optimizer!r} not modelled: assumed AdamW (8 B/param)")
    optimizer = state_per_param * n_trainable if method.trains else 0
    step_temporaries = 4 * n_trainable if method.trains and state_per_param else 0

    act_bytes = 2 if amp else 4
    config = model.config if not hasattr(model, "get_base_model") else model.get_base_model().config
    hidden, vocab = config.hidden_size, config.vocab_size
    activations = amp_copies = head = 0
    if method.trains:
        tokens = training.batch_size * (training.max_length + virtual_tokens)
        activations, amp_copies = _activation_bytes(model, config, tokens, training, act_bytes, amp)
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
        "amp_weight_copies": amp_copies,
        "logits_loss": head,
        "step_temporaries": step_temporaries,
        "eval_logits": eval_logits,
    }
    parts["train_peak"] = (
        static + grads + optimizer + max(activations + amp_copies + head, step_temporaries)
        if method.trains
        else 0
    )
    parts["eval_peak"] = static + optimizer + eval_logits
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])
    counts = {
        "total_params": sum(p.numel() for p in _unique_params(model)),
        "trainable_params": n_trainable,
        "quantized_params": weights["quantized_params"],
        "tokens_per_micro_batch": training.batch_size * (training.max_length + virtual_tokens),
    }
    notes.append(
        f"{precision} ({'autocast, ' if amp else ''}weights loaded as {ctx.weights_dtype}); "
        f"loss {training.loss_type or 'chunked_nll'}; sequences padded to max_length"
    )
    return Estimate(parts, counts, architecture, notes)


def _unique_params(model: Any) -> list[Any]:
    return list({id(p): p for p in model.parameters()}.values())


def _apply_peft(model: Any, peft_config: Any) -> tuple[Any, int]:
    """Wrap a meta model with the run's PEFT config; text-initialised prompts (which would need a
    tokenizer and real embeddings) are counted with random init: same shapes."""
    from peft import get_peft_model

    peft_config = copy.deepcopy(peft_config)
    if getattr(peft_config, "prompt_tuning_init", None) is not None:
        peft_config.prompt_tuning_init = "RANDOM"
        peft_config.prompt_tuning_init_text = None
    wrapped = get_peft_model(model, peft_config)
    extends_sequence = peft_config.is_prompt_learning and peft_config.peft_type != "PREFIX_TUNING"
    return wrapped, peft_config.num_virtual_tokens if extends_sequence else 0


def _is_quantizable_linear(name: str, module: Any, base: Any) -> bool:
    """bitsandbytes quantizes the nn.Linear layers of a model except its output head."""
    import torch

    return isinstance(module, torch.nn.Linear) and module is not base.get_output_embeddings()


def _weight_bytes(model: Any, quantization: Any) -> dict[str, int]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    quantized: set[int] = set()
    if quantization is not None and getattr(quantization, "load_in_4bit", False):
        quantized = {
            id(m.weight)
            for name, m in base.named_modules()
            if _is_quantizable_linear(name, m, base) and not m.weight.requires_grad
        }
    out = {"frozen": 0, "trainable": 0, "quant_constants": 0, "quantized_params": 0}
    for p in _unique_params(model):
        n = p.numel()
        if id(p) in quantized:
            out["frozen"] += n // 2  # two 4-bit weights per byte
            out["quantized_params"] += n
            blocks = -(-n // NF4_BLOCK)
            if quantization.bnb_4bit_use_double_quant:
                out["quant_constants"] += blocks + 4 * -(-blocks // NF4_NESTED_BLOCK)
            else:
                out["quant_constants"] += 4 * blocks
        elif p.requires_grad:
            out["trainable"] += 4 * n
        else:
            out["frozen"] += n * p.element_size()
    return out


def _blocks(model: Any) -> list[Any]:
    from harness.methods.freeze import transformer_blocks

    return list(transformer_blocks(model))


def _activation_bytes(
    model: Any, config: Any, tokens: int, training: Any, act: int, amp: bool
) -> tuple[int, int]:
    """(activation bytes of one micro-batch, autocast's half-precision copies of fp32 weights)."""
    import torch

    blocks = _blocks(model)
    block_ids = {id(p) for b in blocks for p in b.parameters()}
    # The untied head and the final norm train without a gradient through the blocks; a tied
    # head is the input embedding, which does need one.
    input_ids = {id(p) for p in model.get_input_embeddings().parameters()}
    head_ids = {id(p) for p in model.get_output_embeddings().parameters()} - input_ids
    head_ids |= {id(p) for n, p in model.named_parameters() if _is_final_norm(n)}
    # A trainable parameter before the blocks (embeddings, virtual tokens, prefixes) makes the
    # gradient flow through every block.
    flows_from = 0 if any(
        p.requires_grad and id(p) not in block_ids and id(p) not in head_ids
        for p in model.parameters()
    ) else next((i for i, b in enumerate(blocks) if any(p.requires_grad for p in b.parameters())),
                len(blocks))  # fmt: skip
    per_block = [_block_bytes_per_token(b, config, act, training) for b in blocks]
    residual = 4 if not amp or _first_param_dtype(model) == torch.float32 else 2
    flowing = per_block[flows_from:]
    if not flowing:
        activations = 0
    elif training.gradient_checkpointing:
        activations = tokens * (len(flowing) * config.hidden_size * residual + max(flowing))
    else:
        activations = tokens * sum(flowing)
    copies = 0
    if amp:  # autocast caches a half copy of every fp32 weight a matmul uses, until backward
        copies = sum(
            2 * m.weight.numel()
            for m in model.modules()
            if isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32
        )
    # (4-bit layers dequantize one weight per call: a one-layer transient, not modelled.)
    return activations, copies


def _is_final_norm(name: str) -> bool:
    leaf_owner = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
    return leaf_owner in {"norm", "ln_f", "final_layernorm"}


def _first_param_dtype(model: Any) -> Any:
    return model.get_input_embeddings().weight.dtype


def _block_bytes_per_token(block: Any, config: Any, act: int, training: Any) -> int:
    import torch

    hidden = config.hidden_size
    saved = 0
    for name, module in block.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            weight = module.weight
            width = weight.shape[1] if isinstance(module, torch.nn.Linear) else weight.shape[0]
            if weight.requires_grad:
                saved += width * act
                if leaf == "lora_A" or ".lora_A." in f".{name}.":
                    saved += width  # LoRA dropout's mask (1 byte) on the adapter's input
        elif "norm" in type(module).__name__.lower() or leaf.startswith("ln_"):
            weight = getattr(module, "weight", None)
            saved += 4 * hidden + (4 * hidden if weight is not None and weight.requires_grad else 0)
        elif isinstance(module, torch.nn.Dropout) and module.p > 0 and "lora" not in name:
            saved += hidden  # the mask, one byte per element
    heads = config.num_attention_heads
    saved += 4 * hidden * act  # attention saves q, k, v (repeated to all heads) and its output
    implementation = getattr(config, "_attn_implementation", None) or "sdpa"
    if implementation == "eager":
        saved += heads * training.max_length * (act + 4 + act)  # scores, fp32 softmax, its cast
    intermediate = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
    intermediate = intermediate or 4 * hidden
    gated = any(n.endswith("gate_proj") for n, _ in block.named_modules())
    act_fn = getattr(config, "hidden_act", None) or getattr(config, "activation_function", "")
    saves = ACTIVATION_SAVES.get(act_fn, 1)
    saved += intermediate * act * (saves + (2 if gated else 0))  # act fn; gate x up product
    return saved


def _head_bytes(loss_type: str | None, tokens: int, hidden: int, vocab: int, act: int) -> int:
    """The final hidden states kept for the head, plus the logits the loss needs at its peak."""
    per_logit = act + 3 * 4  # half logits; fp32 upcast, saved log-softmax, its gradient
    if (loss_type or "chunked_nll") == "chunked_nll":
        return tokens * hidden * act + min(tokens, CHUNKED_HEAD_TOKENS) * vocab * per_logit
    return tokens * hidden * act + tokens * vocab * per_logit


@dataclass
class Verdict:
    fits: bool | None  # None: no estimate (unknown architecture) or no budget
    predicted_bytes: int | None
    limit_bytes: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "predicted_bytes": self.predicted_bytes,
            "limit_bytes": self.limit_bytes,
            "reason": self.reason,
        }


def verdict(estimate_: Estimate | None, limit_bytes: int | None, why_none: str = "") -> Verdict:
    if estimate_ is None:
        return Verdict(None, None, limit_bytes, why_none or "no estimate")
    total = estimate_.total
    if limit_bytes is None:
        return Verdict(None, total, None, f"predicted {total / GB:.2f} GB; no budget")
    fits = total <= limit_bytes
    relation = "<=" if fits else ">"
    return Verdict(
        fits,
        total,
        limit_bytes,
        f"predicted {total / GB:.2f} GB {relation} {limit_bytes / GB:.1f} GB",
    )
