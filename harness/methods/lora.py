"""LoRA (and DoRA with use_dora: true) via PEFT's LoraConfig."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.config import StrictModel
from harness.methods.base import Method, MethodContext, MethodSetup, register


class LoraParams(StrictModel):
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    use_dora: bool = False
    bias: Literal["none", "all", "lora_only"] = "none"


def lora_config(params: LoraParams):
    from peft import LoraConfig

    return LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=params.target_modules,
        use_dora=params.use_dora,
        bias=params.bias,
        task_type="CAUSAL_LM",
    )


@register("lora")
class Lora(Method):
    Params = LoraParams

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        return MethodSetup(ctx.load_model(), peft_config=lora_config(params))
