"""The SFT backend's models for memory questions: the run's method set up on the meta device
(for the estimator, harness/memory/estimate.py) and on real random weights (to check it)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from harness.backends.sft.methods.base import Method, MethodContext, load_dtype
from harness.memory.estimate import Estimate, MetaModel, apply_peft, estimate_model
from harness.models import ResolvedModel


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


def meta_model(config: Any, method: Method, params: Any, training: Any, device: str) -> MetaModel:
    precision = training.precision if device == "cuda" else "fp32"
    ctx = _MetaContext(config, load_dtype(method, device, precision))
    setup = method.setup(ctx, params)
    model, virtual_tokens = setup.model, 0
    if setup.peft_config is not None:
        model, virtual_tokens = apply_peft(model, setup.peft_config)
    key = f"{type(method).__name__}:{params.model_dump_json()}"
    return MetaModel(model, method.trains, ctx.weights_dtype, ctx.quantization, virtual_tokens, key)


def estimate(
    config: Any,
    method: Method,
    params: Any,
    training: Any,
    *,
    device: str = "cuda",
    architecture: str = "",
) -> Estimate:
    """The estimate for `method` with `params` on a model of `config`, trained with `training`."""
    built = meta_model(config, method, params, training, device)
    return estimate_model(built, training, device=device, architecture=architecture)


def code_files(method: Method) -> list[Path]:
    """The source an SFT estimate depends on besides the estimator: this module, the method
    (its class and the base it inherits) and how blocks are found."""
    from harness.models import blocks

    classes = [c for c in type(method).__mro__ if c is not object]  # a plug-in's too
    files = {Path(__file__), Path(blocks.__file__), *(Path(inspect.getfile(c)) for c in classes)}
    return sorted(files)


def measured_activation_bytes(
    config: Any, method: Method, params: Any, batch: int, length: int
) -> int:
    """A real model with random weights, set up by `method` as a run would set it up (PEFT
    wrapping included), and what one training forward pass of it saves inside its blocks: the
    measurement the estimator's activation trace is checked against."""
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
    blocks = list(transformer_blocks(model))
    return sum(saved_block_bytes(model, blocks, lambda: model(input_ids=ids)))
