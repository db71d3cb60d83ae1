"""Freeze tuning for encoders: train only the last N transformer layers (BERT: encoder.layer)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.backends.embedding.methods.base import EmbeddingMethod, TrainParams, register
from harness.models.blocks import train_last_blocks


class FreezeParams(TrainParams):
    n_layers: int = Field(2, ge=0)


@register("freeze")
class Freeze(EmbeddingMethod):
    Params = FreezeParams

    def setup(self, model: Any, params: FreezeParams) -> dict[str, Any]:
        return train_last_blocks(model, params.n_layers)
