"""Test-only methods that fail on purpose, loaded through FTBENCH_PLUGINS (like a user plug-in)."""

from __future__ import annotations

import time

from pydantic import Field

from harness.config import StrictModel
from harness.methods.base import METHODS, Method, MethodContext, MethodSetup
from harness.methods.lora import Lora, LoraParams


@METHODS.register_instance("explode")
class Explode(Method):
    def setup(self, ctx: MethodContext, params: StrictModel) -> MethodSetup:
        raise RuntimeError("injected failure for testing")


@METHODS.register_instance("nan_loss")
class NanLoss(Lora):
    """LoRA whose embeddings output NaN: the training loss is NaN from the first step.

    The hook sits on the input embeddings, not on lm_head: TRL's default chunked loss computes
    the head projection from its weight directly, without calling the head module.
    """

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        setup = super().setup(ctx, params)
        embeddings = setup.model.get_input_embeddings()
        embeddings.register_forward_hook(lambda module, inputs, out: out * float("nan"))
        return setup


class HangParams(StrictModel):
    seconds: float = Field(600.0, gt=0)


@METHODS.register_instance("hang")
class Hang(Method):
    Params = HangParams

    def setup(self, ctx: MethodContext, params: HangParams) -> MethodSetup:
        time.sleep(params.seconds)
        raise AssertionError("should have been killed by the timeout")
