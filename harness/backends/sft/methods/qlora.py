"""QLoRA: the base model loaded in 4-bit (NF4 by default, double quantization) + LoRA adapters."""

from __future__ import annotations

from typing import Any, Literal

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.backends.sft.methods.lora import (
    LoraParams,
    check_loraplus,
    loraplus_optimizer,
)
from harness.suite.config import optional

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class QLoraParams(LoraParams):
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["fp32", "fp16", "bf16"] = "fp16"
    bits: Literal[4, 8] | None = optional()  # 8: LLM.int8 base (quant_type/double_quant unused)


@register("qlora")
class QLora(Method):
    Params = QLoraParams

    def setup(self, ctx: MethodContext, params: QLoraParams) -> MethodSetup:
        import torch
        from transformers import BitsAndBytesConfig

        compute = params.compute_dtype
        notes = {}
        if ctx.device == "cpu" and compute != "fp32":
            # bitsandbytes' CPU kernels compute in fp32; fp16 is a GPU (T4) setting.
            notes["compute_dtype_effective"] = "fp32 (CPU)"
            compute = "fp32"
        if params.bits == 8:
            quantization = BitsAndBytesConfig(load_in_8bit=True)
        else:
            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=params.quant_type,
                bnb_4bit_use_double_quant=params.double_quant,
                bnb_4bit_compute_dtype=getattr(torch, _DTYPES[compute]),
            )
        model = ctx.load_model(quantization_config=quantization, device_map={"": ctx.device})
        return MethodSetup(model, peft_config=params.causal_lm_config(), notes=notes)

    def check(self, spec: Any, params: QLoraParams) -> None:
        check_loraplus(spec, params)

    def optimizer(self, model: Any, run: Any) -> Any:
        return loraplus_optimizer(model, run)
