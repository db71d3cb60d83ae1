"""The one LoRA parameter model, shared by every backend that trains LoRA adapters.

Backends differ only in the dropout default, stated here: 0.05 for causal-LM SFT (PEFT's method
comparison default), 0.1 for sentence embeddings (the sentence-transformers recipes) and 0 for
preference alignment, whose KL estimate and sampling must see the policy that was trained. A
default is part of every run_id that uses it: change one and that backend's runs are new runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.config import StrictModel

DROPOUT_DEFAULT = {"sft": 0.05, "embedding": 0.1, "alignment": 0.0}


class LoraParams(StrictModel):
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(DROPOUT_DEFAULT["sft"], ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"

    def lora_fields(self) -> dict[str, Any]:
        """These values as PEFT LoraConfig fields (the SFT backend builds its config from them
        through its generic PEFT method)."""
        return {
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules,
        }

    def peft_config(self, task_type: str, **extra: Any) -> Any:
        """PEFT's LoraConfig for these values; `extra` carries the fields a backend sets itself
        (DoRA, bias, a classifier head to train beside the adapter)."""
        from peft import LoraConfig

        return LoraConfig(**self.lora_fields(), task_type=task_type, **extra)
