"""The SFT backend's models for memory questions: the run's method set up on the meta device
(for the estimator, harness/memory/estimate.py) and on real random weights (to check it)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.backends.sft.methods.base import Method, MethodContext, load_dtype
from harness.memory.estimate import (
    Estimate,
    MetaModel,
    NotEstimated,
    apply_peft,
    estimate_model,
)
from harness.models import ResolvedModel

# PEFT types the estimator is known to trace (tests/test_generic_peft.py; the first four also
# against real saved tensors, benchmarks/memory_calibration.py). An error tracing one of them, or
# a method without PEFT, is an estimator bug and surfaces as one. Any other PEFT type may use ops
# the trace's fake tensors cannot run (LoHa, LoKr and BOFT do): its error becomes "not estimated".
TRACED_PEFT_TYPES = frozenset({
    "LORA", "IA3", "PROMPT_TUNING", "PREFIX_TUNING", "OFT", "VERA", "ADALORA", "LN_TUNING",
    "FOURIERFT", "HRA", "MISS", "C3A", "ADAPTION_PROMPT",
})  # fmt: skip


# PEFT types whose layers use data-dependent ops the trace's fake tensors cannot run: answered
# before their adapters are built (BOFT's take seconds per 7B model). tests/test_memory.py checks
# on a tiny model that each still fails the trace, so this list stays true.
UNTRACEABLE_PEFT_TYPES = frozenset({"LOHA", "LOKR", "BOFT"})


def peft_type_name(peft_config: Any) -> str | None:
    kind = getattr(peft_config, "peft_type", None)
    return None if kind is None else str(getattr(kind, "value", kind))


@contextlib.contextmanager
def untraceable_is_not_estimated(peft_type: str | None) -> Iterator[None]:
    """An error from the trace of an unchecked PEFT type -> NotEstimated naming it and why."""
    if peft_type is None or peft_type in TRACED_PEFT_TYPES:
        yield
        return
    try:
        yield
    except NotEstimated:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever PEFT's layers do under fake tensors
        raise NotEstimated(
            f"not estimated: the estimator cannot trace PEFT type {peft_type} "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


class MetaContext(MethodContext):
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


class Linear4bitFlow:
    """The dtype flow of bitsandbytes' Linear4bit on CUDA, for a frozen quantized layer on the
    meta device: the input is cast to the compute dtype, the 4-bit matmul (a custom op autocast
    does not touch) returns the compute dtype, and the output is cast back to the input's
    dtype. Nothing is saved for backward but the (4-bit) weight. Mixed into nn.Linear."""

    compute_dtype: Any

    def forward(self, x: Any) -> Any:
        import torch

        with torch.autocast("cpu", enabled=False):
            weight = self.weight.to(self.compute_dtype)
            bias = None if self.bias is None else self.bias.to(self.compute_dtype)
            out = torch.nn.functional.linear(x.to(self.compute_dtype), weight, bias)
        return out.to(x.dtype)


def _as_4bit_layers(model: Any, quantization: Any) -> None:
    """Give the layers bitsandbytes would quantize Linear4bit's dtype flow (Linear4bitFlow)."""
    import torch

    from harness.memory.estimate import is_quantizable_linear

    compute = quantization.bnb_4bit_compute_dtype or torch.float32
    for module in list(model.modules()):
        if is_quantizable_linear(module, model) and type(module) is torch.nn.Linear:
            module.__class__ = type("Linear4bit", (Linear4bitFlow, torch.nn.Linear), {})
            module.compute_dtype = compute


def prepare_kbit(model: Any) -> None:
    """What peft's prepare_model_for_kbit_training does to the shapes and dtypes the trace sees:
    every parameter frozen, and every non-4-bit half-precision parameter (embeddings, norms, the
    head) cast to fp32, which turns the residual stream fp32. ftbench's SFT backend does not call
    it (TRL's SFTTrainer does not); the plain PEFT loop of the H100 reference table does."""
    import torch

    quantized = {id(m.weight) for m in model.modules() if isinstance(m, Linear4bitFlow)}
    for param in model.parameters():
        param.requires_grad_(False)
        if param.dtype in (torch.float16, torch.bfloat16) and id(param) not in quantized:
            param.data = param.data.to(torch.float32)


def meta_model(
    config: Any,
    method: Method,
    params: Any,
    training: Any,
    device: str,
    kbit_prepared: bool = False,
    padded_batches: bool = True,
) -> MetaModel:
    """`padded_batches`: TRL's collator pads each batch to its longest sequence and passes the
    attention mask (the H100 table's loop passed none). `kbit_prepared`: prepare_kbit."""
    precision = training.precision if device == "cuda" else "fp32"
    ctx = MetaContext(config, load_dtype(method, device, precision))
    setup = method.setup(ctx, params)
    model, virtual_tokens = setup.model, 0
    if getattr(ctx.quantization, "load_in_4bit", False) and device == "cuda":
        _as_4bit_layers(model, ctx.quantization)
        if kbit_prepared:
            prepare_kbit(model)
    if setup.peft_config is not None:
        kind = peft_type_name(setup.peft_config)
        if kind in UNTRACEABLE_PEFT_TYPES:
            raise NotEstimated(
                f"not estimated: the estimator cannot trace PEFT type {kind} (its layers use "
                "data-dependent operations the trace's fake tensors cannot run)"
            )
        with untraceable_is_not_estimated(kind):
            model, virtual_tokens = apply_peft(model, setup.peft_config)
    key = f"{type(method).__name__}:{params.model_dump_json()}:{kbit_prepared}"
    return MetaModel(
        model, method.trains, ctx.weights_dtype, ctx.quantization, virtual_tokens, key,
        padded_batches,
    )  # fmt: skip


def estimate(
    config: Any,
    method: Method,
    params: Any,
    training: Any,
    *,
    device: str = "cuda",
    architecture: str = "",
    kbit_prepared: bool = False,
    padded_batches: bool = True,
) -> Estimate:
    """The estimate for `method` with `params` on a model of `config`, trained with `training`
    (`kbit_prepared`: a quantized model went through prepare_model_for_kbit_training)."""
    built = meta_model(config, method, params, training, device, kbit_prepared, padded_batches)
    with untraceable_is_not_estimated(
        peft_type_name(getattr(built.model, "active_peft_config", None))
    ):
        return estimate_model(built, training, device=device, architecture=architecture)


def code_files(method: Method) -> list[Path]:
    """The source an SFT estimate depends on besides the estimator: this module, the method
    (its class and the base it inherits) and how blocks are found."""
    from harness.models import blocks

    classes = [c for c in type(method).__mro__ if c is not object]  # a plug-in's too
    files = {Path(__file__), Path(blocks.__file__), *(Path(inspect.getfile(c)) for c in classes)}
    return sorted(files)


def measured_activation_bytes(
    config: Any, method: Method, params: Any, batch: int, length: int, cuda_kernels: bool = False
) -> int:
    """A real model with random weights, set up by `method` as a run would set it up (PEFT
    wrapping included), and what one training forward pass of it saves inside its blocks: the
    measurement the estimator's activation trace is checked against. `cuda_kernels`: the forward
    runs with CUDA's dropout and attention (harness/memory/cuda_kernels.py), as a GPU trace does."""
    import contextlib

    import torch
    from peft import get_peft_model

    from harness.memory.measure import saved_block_bytes
    from harness.models.blocks import transformer_blocks

    torch.manual_seed(0)
    ctx = MethodContext(ResolvedModel("(random weights)", None), None, "cpu", random_config=config)
    setup = method.setup(ctx, params)
    model = setup.model
    if setup.peft_config is not None:
        model = get_peft_model(model, setup.peft_config)
    model.train()
    ids = torch.randint(0, config.vocab_size, (batch, length))
    mask = torch.ones_like(ids)
    mask[0, -1] = 0  # a padded batch, as the SFT backend's collator makes and the trace assumes
    blocks = list(transformer_blocks(model))
    from harness.memory.cuda_kernels import CudaKernels

    kernels = CudaKernels() if cuda_kernels else contextlib.nullcontext()
    with kernels:
        return sum(
            saved_block_bytes(model, blocks, lambda: model(input_ids=ids, attention_mask=mask))
        )
