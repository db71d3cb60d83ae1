"""Freeze tuning: train only the last N transformer blocks (plus final norm and head)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.config import StrictModel
from harness.methods.base import Method, MethodContext, MethodSetup, register


class FreezeParams(StrictModel):
    n_layers: int = Field(2, ge=0)
    train_head: bool = True
    train_final_norm: bool = True


def transformer_blocks(model: Any) -> Any:
    """The ModuleList of transformer blocks (model.model.layers for Llama/Qwen, transformer.h for
    GPT-2, encoder.layer for BERT)."""
    import torch

    candidates = [
        module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList)
        and name.split(".")[-1] in {"layers", "h", "blocks", "layer"}
    ]
    if not candidates:
        raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")
    return max(candidates, key=len)


def train_last_blocks(model: Any, n_layers: int) -> dict[str, Any]:
    """Freeze everything, then unfreeze the last `n_layers` blocks; notes for the run."""
    model.requires_grad_(False)
    blocks = transformer_blocks(model)
    if n_layers > len(blocks):
        raise ValueError(f"freeze.n_layers={n_layers} but the model has {len(blocks)} blocks")
    for block in list(blocks)[len(blocks) - n_layers :]:
        block.requires_grad_(True)
    return {"trained_blocks": n_layers, "total_blocks": len(blocks)}


@register("freeze")
class Freeze(Method):
    Params = FreezeParams
    trains_base_weights = True

    def setup(self, ctx: MethodContext, params: FreezeParams) -> MethodSetup:
        model = ctx.load_model()
        notes = train_last_blocks(model, params.n_layers)
        if params.train_final_norm:
            norm = getattr(model.get_decoder(), "norm", None) or getattr(
                model.get_decoder(), "ln_f", None
            )
            if norm is not None:
                norm.requires_grad_(True)
        if params.train_head:
            model.get_output_embeddings().requires_grad_(True)
            # With tied embeddings the head *is* the input embedding matrix: record it.
            notes["head_tied_to_embeddings"] = bool(
                getattr(model.config, "tie_word_embeddings", False)
            )
        return MethodSetup(model, notes=notes)
