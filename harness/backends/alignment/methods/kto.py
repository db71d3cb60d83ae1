"""`kto`: Kahneman-Tversky Optimization (TRL KTOTrainer) on the same proxy-ranked samples as DPO,
unpaired: the preferred sample of each prompt is `desirable`, the other `undesirable`."""

from __future__ import annotations

from pydantic import Field

from harness.backends.alignment.memory import PreferenceShape
from harness.backends.alignment.methods.base import PolicyParams, register
from harness.backends.alignment.methods.preference_data import OfflinePreferenceMethod


class KtoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)


@register("kto")
class Kto(OfflinePreferenceMethod):
    Params = KtoParams

    def memory_shape(self, params: KtoParams) -> PreferenceShape:
        # unpaired rows; the reference's completion and KL logits are held together
        return PreferenceShape(1, reference=True, nograd_rows=2)

    def trainer(self, params: KtoParams):
        from trl import KTOConfig, KTOTrainer

        fields = {"beta": params.beta, "desirable_weight": params.desirable_weight,
                  "undesirable_weight": params.undesirable_weight}  # fmt: skip
        return KTOConfig, KTOTrainer, fields

    def examples(self, rows):
        return [
            {"prompt": r["prompt"], "completion": r[key], "label": key == "chosen"}
            for r in rows
            for key in ("chosen", "rejected")
        ]
