"""`dpo`: Direct Preference Optimization (TRL DPOTrainer) on proxy-ranked on-policy pairs.

`loss_type` is any of TRL's DPO losses (sigmoid, ipo, hinge, robust, ...); see preference_data.py
for how the pairs are built. The reference is the starting policy (LoRA: adapter off).
"""

from __future__ import annotations

from pydantic import Field

from harness.backends.alignment.memory import PreferenceShape
from harness.backends.alignment.methods.base import PolicyParams, register
from harness.backends.alignment.methods.preference_data import OfflinePreferenceMethod


class DpoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)


@register("dpo")
class Dpo(OfflinePreferenceMethod):
    Params = DpoParams

    def memory_shape(self, params: DpoParams) -> PreferenceShape:
        # chosen + rejected in one forward; the reference's logits of both; `sft` adds an NLL
        return PreferenceShape(2, reference=True, nograd_rows=2,
                               chosen_nll=params.loss_type == "sft")  # fmt: skip

    def trainer(self, params: DpoParams):
        from trl import DPOConfig, DPOTrainer

        fields = {"beta": params.beta, "loss_type": [params.loss_type],
                  "label_smoothing": params.label_smoothing}  # fmt: skip
        return DPOConfig, DPOTrainer, fields
