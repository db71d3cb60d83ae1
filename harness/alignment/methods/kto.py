"""`kto`: Kahneman-Tversky Optimization (TRL KTOTrainer) on the same proxy-ranked samples as DPO,
unpaired: the preferred sample of each prompt is `desirable`, the other `undesirable`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    StageResult,
    policy_lora,
    register,
)
from harness.alignment.methods.dpo import offline_config, train_offline
from harness.alignment.methods.preference_data import ranked_pairs


class KtoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)


@register("kto")
class Kto(PolicyMethod):
    Params = KtoParams

    def train_policy(self, ctx: AlignContext, params: KtoParams, proxy: Any) -> StageResult:
        from datasets import Dataset
        from trl import KTOConfig, KTOTrainer

        rows, notes = ranked_pairs(ctx, params, proxy)
        unpaired = [
            {"prompt": r["prompt"], "completion": r[key], "label": key == "chosen"}
            for r in rows
            for key in ("chosen", "rejected")
        ]
        if not unpaired:
            raise ValueError("no preference data: every sampled pair tied under the proxy")
        config = offline_config(
            KTOConfig, ctx, beta=params.beta, desirable_weight=params.desirable_weight,
            undesirable_weight=params.undesirable_weight,
        )  # fmt: skip
        trainer = KTOTrainer(
            model=ctx.load_start(), args=config, train_dataset=Dataset.from_list(unpaired),
            processing_class=ctx.tokenizer, peft_config=policy_lora(params),
            callbacks=ctx.callbacks,
        )  # fmt: skip
        return train_offline(ctx, trainer, notes)
