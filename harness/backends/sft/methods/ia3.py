"""IA3: learned rescaling vectors on attention keys/values and the feed-forward (PEFT's IA3Config;
a preset of the generic PEFT method)."""

from __future__ import annotations

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.generic_peft import build_config
from harness.suite.config import StrictModel


class IA3Params(StrictModel):
    target_modules: list[str] | None = None  # None: PEFT's defaults for the architecture
    feedforward_modules: list[str] | None = None


@register("ia3")
class IA3(Method):
    Params = IA3Params

    def setup(self, ctx: MethodContext, params: IA3Params) -> MethodSetup:
        fields = {
            "target_modules": params.target_modules,
            "feedforward_modules": params.feedforward_modules,
        }
        config = build_config("IA3", fields)
        return MethodSetup(ctx.load_model(), peft_config=config)
