"""LN tuning: only the LayerNorm/RMSNorm weights train (PEFT's LNTuningConfig; Zhao et al. 2023,
"Tuning LayerNorm in Attention"). A few thousand parameters per billion: the smallest adapter."""

from __future__ import annotations

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.suite.config import StrictModel


class LnTuningParams(StrictModel):
    target_modules: list[str] | None = None  # None: PEFT's norm layers for the architecture


@register("ln_tuning")
class LnTuning(Method):
    Params = LnTuningParams

    def setup(self, ctx: MethodContext, params: LnTuningParams) -> MethodSetup:
        from peft import LNTuningConfig

        config = LNTuningConfig(task_type="CAUSAL_LM", target_modules=params.target_modules)
        return MethodSetup(ctx.load_model(), peft_config=config)
