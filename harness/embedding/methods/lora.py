"""LoRA adapters on the SentenceTransformer's transformer (PEFT, via its add_adapter support)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.embedding.methods.base import EmbeddingMethod, TrainParams, register


class LoraParams(TrainParams):
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


@register("lora")
class Lora(EmbeddingMethod):
    Params = LoraParams

    def setup(self, model: Any, params: LoraParams) -> dict[str, Any]:
        from peft import LoraConfig, TaskType

        model.add_adapter(
            LoraConfig(
                r=params.r,
                lora_alpha=params.alpha,
                lora_dropout=params.dropout,
                target_modules=params.target_modules,
                task_type=TaskType.FEATURE_EXTRACTION,
            )
        )  # freezes the base weights; only the adapter trains
        return {"adapter": "lora"}
