"""LoRA adapters on the SentenceTransformer's transformer (PEFT, via its add_adapter support)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.backends import lora
from harness.backends.embedding.methods.base import EmbeddingMethod, TrainParams, register


class LoraParams(TrainParams, lora.LoraParams):
    dropout: float = Field(lora.DROPOUT_DEFAULT["embedding"], ge=0, lt=1)


@register("lora")
class Lora(EmbeddingMethod):
    Params = LoraParams

    def setup(self, model: Any, params: LoraParams) -> dict[str, Any]:
        # Freezes the base weights; only the adapter trains.
        model.add_adapter(params.peft_config("FEATURE_EXTRACTION"))
        return {"adapter": "lora"}
