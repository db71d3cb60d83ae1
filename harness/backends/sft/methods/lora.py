"""LoRA (and DoRA with use_dora: true) via PEFT's LoraConfig: a preset of the generic PEFT
method."""

from __future__ import annotations

from typing import Any, Literal

from harness.backends import lora
from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.generic_peft import build_config
from harness.suite.config import optional


class LoraParams(lora.LoraParams):
    use_dora: bool = False
    bias: Literal["none", "all", "lora_only"] = "none"
    # LoRA+ (Hayou et al. 2024): B learns this many times faster than A (PEFT's
    # create_loraplus_optimizer; AdamW, the run's learning rate for A). Unset: one rate.
    loraplus_lr_ratio: float | None = optional(gt=0)

    def causal_lm_config(self):
        return build_config("LORA", self.peft_fields())

    def peft_fields(self) -> dict:
        return {**self.lora_fields(), "use_dora": self.use_dora, "bias": self.bias}


@register("lora")
class Lora(Method):
    Params = LoraParams

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        return MethodSetup(ctx.load_model(), peft_config=params.causal_lm_config())

    def check(self, spec: Any, params: LoraParams) -> None:
        check_loraplus(spec, params)

    def optimizer(self, model: Any, run: Any) -> Any:
        return loraplus_optimizer(model, run)


def check_loraplus(spec: Any, params: LoraParams) -> None:
    if params.loraplus_lr_ratio is not None and spec.training.optimizer != "adamw_torch":
        raise ValueError(
            f"loraplus_lr_ratio builds its own AdamW (torch) optimizer; training.optimizer "
            f"{spec.training.optimizer!r} would be ignored: leave it at adamw_torch"
        )


def loraplus_optimizer(model: Any, run: Any) -> Any:
    """PEFT's LoRA+ optimizer when loraplus_lr_ratio is set (None: the Trainer builds its own)."""
    if run.params.loraplus_lr_ratio is None:
        return None
    import torch
    from peft.optimizers import create_loraplus_optimizer

    t = run.spec.training
    return create_loraplus_optimizer(
        model, torch.optim.AdamW, lr=t.learning_rate,
        loraplus_lr_ratio=run.params.loraplus_lr_ratio, weight_decay=t.weight_decay,
    )  # fmt: skip
