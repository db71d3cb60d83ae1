"""Freeze tuning: train only the last N transformer blocks (plus final norm and head)."""

from __future__ import annotations

from pydantic import Field

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.models.blocks import train_last_blocks
from harness.suite.config import StrictModel


class FreezeParams(StrictModel):
    n_layers: int = Field(2, ge=0)
    train_head: bool = True
    train_final_norm: bool = True


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
