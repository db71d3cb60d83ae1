"""`grpo`: Group Relative Policy Optimization (TRL's top-level GRPOTrainer) against the proxy.

Critic-free: each prompt is sampled `num_generations` times and each completion's advantage is
its proxy reward relative to its group's (scaled per `scale_rewards`). The reward function is the
proxy reward model scoring the decoded prompt + completion (the text PPO's proxy scores), from the
same start policy and the same prompts as PPO. `beta` > 0 adds a KL term to the start policy (TRL
loads a reference then: with LoRA, the base with the adapter off); TRL's default is 0. One step
= `batch_size` completions, i.e. batch_size / num_generations prompts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.backends import Trained
from harness.backends.alignment.memory_online import grpo_estimate
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
    check_whole_groups,
    train_online,
)


class GrpoParams(PolicyParams):
    num_generations: int = Field(4, ge=2)  # completions per prompt (the group)
    beta: float = Field(0.0, ge=0)  # KL coefficient to the start policy (TRL's default: 0)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    temperature: float = Field(1.0, gt=0)
    epsilon: float = Field(0.2, gt=0)  # the clipping range of the ratio
    num_iterations: int = Field(1, ge=1)  # updates per generation batch


@register("grpo")
class Grpo(PolicyMethod):
    Params = GrpoParams

    def estimate_memory(self, spec: Any, params: GrpoParams, device: str) -> Any:

        return cached_rl_estimate(self, spec, params, device, grpo_estimate)

    def train_policy(self, ctx: AlignContext, params: GrpoParams, proxy: Any) -> Trained:
        from trl import GRPOConfig, GRPOTrainer

        check_whole_groups(ctx.spec.training, params.num_generations)
        config = GRPOConfig(
            **ctx.trainer_args(), num_generations=params.num_generations, beta=params.beta,
            loss_type=params.loss_type, scale_rewards=params.scale_rewards,
            temperature=params.temperature, epsilon=params.epsilon,
            num_iterations=params.num_iterations, max_completion_length=params.max_new_tokens,
            log_completions=False, **PLAIN_SAMPLING,
        )  # fmt: skip
        return train_online(
            ctx, params, proxy, GRPOTrainer, config, train_prompts(ctx, params),
            lambda n: {"completions": n, "groups": n // params.num_generations},
        )  # fmt: skip
