"""The one LoRA parameter model, shared by every backend that trains LoRA adapters.

Backends differ only in the dropout default, stated here: 0.05 for causal-LM SFT (PEFT's method
comparison default), 0.1 for sentence embeddings (the sentence-transformers recipes) and 0 for
preference alignment, whose KL estimate and sampling must see the policy that was trained. A
default is part of every run_id that uses it: change one and that backend's runs are new runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.suite.config import StrictModel, optional

DROPOUT_DEFAULT = {"sft": 0.05, "embedding": 0.1, "alignment": 0.0}


class LoraParams(StrictModel):
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(DROPOUT_DEFAULT["sft"], ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    # LLaMA-Factory's LoRA knobs (optional: unset, a run_id is what it was). rsLoRA scales by
    # alpha/sqrt(r) instead of alpha/r; PiSSA/OLoRA start the adapter from the weight's principal
    # components / QR factors (and take them out of the base); gaussian: A ~ N(0, 1/r).
    use_rslora: bool | None = optional()
    init: Literal["pissa", "olora", "gaussian"] | None = optional()

    def lora_fields(self) -> dict[str, Any]:
        """These values as PEFT LoraConfig fields (the SFT backend builds its config from them
        through its generic PEFT method)."""
        return {
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules,
            **({"use_rslora": self.use_rslora} if self.use_rslora is not None else {}),
            **({"init_lora_weights": self.init} if self.init is not None else {}),
        }

    def peft_config(self, task_type: str, **extra: Any) -> Any:
        """PEFT's LoraConfig for these values; `extra` carries the fields a backend sets itself
        (DoRA, bias, a classifier head to train beside the adapter)."""
        from peft import LoraConfig

        return LoraConfig(**self.lora_fields(), task_type=task_type, **extra)


def policy_lora(params: Any) -> Any:
    """The LoRA config of an alignment policy (its PolicyParams: peft, r, alpha), None for full
    fine-tuning: what the preference trainers and PPO get as peft_config, and what the memory
    estimate builds."""
    if params.peft == "full":
        return None
    lora = LoraParams(r=params.r, alpha=params.alpha, dropout=DROPOUT_DEFAULT["alignment"])
    return lora.peft_config("CAUSAL_LM")
