"""Prefix tuning: trainable key/value prefixes in every attention layer (PEFT's
PrefixTuningConfig; a preset of the generic PEFT method)."""

from __future__ import annotations

from pydantic import Field

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.generic_peft import build_config
from harness.suite.config import StrictModel


class PrefixParams(StrictModel):
    num_virtual_tokens: int = Field(16, ge=1)
    projection: bool = False  # reparameterise the prefix through an MLP (the paper's trick)
    encoder_hidden_size: int = Field(256, ge=1)


@register("prefix")
class PrefixTuning(Method):
    Params = PrefixParams

    def setup(self, ctx: MethodContext, params: PrefixParams) -> MethodSetup:
        fields = {
            "num_virtual_tokens": params.num_virtual_tokens,
            "prefix_projection": params.projection,
            "encoder_hidden_size": params.encoder_hidden_size,
        }
        config = build_config("PREFIX_TUNING", fields)
        return MethodSetup(ctx.load_model(), peft_config=config)
