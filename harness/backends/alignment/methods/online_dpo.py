"""`online_dpo`: online DPO (TRL 1.12 `trl.experimental.online_dpo`) with the proxy as the judge.

Each step samples two completions per prompt from the current policy, ranks the pair with the
proxy reward model (the higher-scored completion is chosen), and takes a DPO step on that pair
against the start policy (LoRA: the base with the adapter off; full fine-tuning: a frozen copy).
The pairs are on-policy, unlike `dpo`'s, which are sampled once from the start policy before
training (preference_data.py). Loss variants are TRL's: `sigmoid` (DPO) and `ipo`. From the same
start policy and the same prompts as PPO, GRPO and RLOO; one step = `batch_size` prompts, i.e.
2 x batch_size completions. Sampling temperature 1.0 by default (TRL's is 0.9) like the other
online methods and the scoring, top_k 0, top_p 1.0.

Experimental in TRL: this is the only file that imports `trl.experimental.online_dpo`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.backends import Trained
from harness.backends.alignment.memory_online import online_dpo_estimate
from harness.backends.alignment.memory_rl import cached_rl_estimate
from harness.backends.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    register,
    train_prompts,
)
from harness.backends.alignment.methods.online import (
    PLAIN_SAMPLING,
    train_online,
)


class OnlineDpoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)  # DPO's beta (IPO's tau): the pull towards the start policy
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    temperature: float = Field(1.0, gt=0)


@register("online_dpo")
class OnlineDpo(PolicyMethod):
    Params = OnlineDpoParams

    def estimate_memory(self, spec: Any, params: OnlineDpoParams, device: str) -> Any:

        return cached_rl_estimate(self, spec, params, device, online_dpo_estimate)

    def train_policy(self, ctx: AlignContext, params: OnlineDpoParams, proxy: Any) -> Trained:
        from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer

        config = OnlineDPOConfig(
            **ctx.trainer_args(), beta=params.beta, loss_type=params.loss_type,
            temperature=params.temperature, max_new_tokens=params.max_new_tokens,
            max_length=ctx.spec.training.max_length, **PLAIN_SAMPLING,
        )  # fmt: skip
        return train_online(
            ctx, params, proxy, OnlineDPOTrainer, config, train_prompts(ctx, params),
            lambda n: {"pairs": n, "completions": 2 * n},
        )  # fmt: skip
