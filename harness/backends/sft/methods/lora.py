"""LoRA (and DoRA with use_dora: true) via PEFT's LoraConfig: a preset of the generic PEFT
method."""

from __future__ import annotations

from typing import Literal

from harness.backends import lora
from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.generic_peft import build_config


class LoraParams(lora.LoraParams):
    use_dora: bool = False
    bias: Literal["none", "all", "lora_only"] = "none"

    def causal_lm_config(self):
        return build_config("LORA", self.peft_fields())

    def peft_fields(self) -> dict:
        return {**self.lora_fields(), "use_dora": self.use_dora, "bias": self.bias}


@register("lora")
class Lora(Method):
    Params = LoraParams

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        return MethodSetup(ctx.load_model(), peft_config=params.causal_lm_config())
