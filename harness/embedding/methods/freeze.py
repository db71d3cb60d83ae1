"""Freeze tuning for encoders: train only the last N transformer layers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.embedding.methods.base import EmbeddingMethod, TrainParams, register
from harness.methods.freeze import transformer_blocks


class FreezeParams(TrainParams):
    n_layers: int = Field(2, ge=0)


@register("freeze")
class Freeze(EmbeddingMethod):
    Params = FreezeParams

    def setup(self, model: Any, params: FreezeParams) -> dict[str, Any]:
        model.requires_grad_(False)
        blocks = transformer_blocks(model)
        if params.n_layers > len(blocks):
            raise ValueError(
                f"freeze.n_layers={params.n_layers} but the model has {len(blocks)} layers"
            )
        for block in list(blocks)[len(blocks) - params.n_layers :]:
            block.requires_grad_(True)
        return {"trained_blocks": params.n_layers, "total_blocks": len(blocks)}
