"""Prompt tuning: trainable virtual-token embeddings prepended to the input (PEFT's
PromptTuningConfig; a preset of the generic PEFT method)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.generic_peft import build_config
from harness.suite.config import StrictModel


class PromptParams(StrictModel):
    num_virtual_tokens: int = Field(16, ge=1)
    init: Literal["random", "text"] = "text"
    init_text: str | None = "Classify the sentiment of this movie review as positive or negative."

    @model_validator(mode="after")
    def _text_given(self) -> PromptParams:
        if self.init == "text" and not self.init_text:
            raise ValueError("init: text needs init_text")
        return self


@register("prompt")
class PromptTuning(Method):
    Params = PromptParams

    def setup(self, ctx: MethodContext, params: PromptParams) -> MethodSetup:
        from peft import PromptTuningInit

        text_init = params.init == "text"
        fields = {
            "num_virtual_tokens": params.num_virtual_tokens,
            "prompt_tuning_init": PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
            "prompt_tuning_init_text": params.init_text if text_init else None,
            "tokenizer_name_or_path": ctx.resolved.location if text_init else None,
            # the pinned revision: PEFT loads the init text's tokenizer itself (hub models)
            "tokenizer_kwargs": (ctx.resolved.from_pretrained_kwargs() or None)
            if text_init
            else None,
        }
        config = build_config("PROMPT_TUNING", fields)
        return MethodSetup(ctx.load_model(), peft_config=config)
