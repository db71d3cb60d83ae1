"""`rloo`: REINFORCE Leave-One-Out (TRL's top-level RLOOTrainer) against the proxy.

Critic-free like GRPO: each prompt is sampled `num_generations` times; a completion's advantage is
its reward minus the mean reward of the other completions of its prompt (the leave-one-out
baseline), optionally normalised over the generation batch (`normalize_advantages`). Unlike
GRPO's, RLOO's KL to the start policy is a penalty in the reward (reward - beta x the sequence's
KL), and its ratio and clipping are per sequence, not per token. TRL's default beta is 0.05
(beta 0 loads no reference). The reward function is the proxy reward model scoring the decoded
prompt + completion, from the same start policy and the same prompts as PPO and GRPO. One step =
`batch_size` completions, i.e. batch_size / num_generations prompts.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.backends import Trained
from harness.backends.alignment.memory_online import rloo_estimate
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


class RlooParams(PolicyParams):
    num_generations: int = Field(4, ge=2)  # completions per prompt (the leave-one-out group)
    beta: float = Field(0.05, ge=0)  # KL penalty in the reward, to the start policy (TRL's 0.05)
    normalize_advantages: bool = False  # mean 0, std 1 over the generation batch (TRL's: off)
    temperature: float = Field(1.0, gt=0)
    epsilon: float = Field(0.2, gt=0)  # the clipping range of the sequence ratio
    num_iterations: int = Field(1, ge=1)  # updates per generation batch


@register("rloo")
class Rloo(PolicyMethod):
    Params = RlooParams

    def estimate_memory(self, spec: Any, params: RlooParams, device: str) -> Any:

        return cached_rl_estimate(self, spec, params, device, rloo_estimate)

    def train_policy(self, ctx: AlignContext, params: RlooParams, proxy: Any) -> Trained:
        from trl import RLOOConfig, RLOOTrainer

        check_whole_groups(ctx.spec.training, params.num_generations)
        config = RLOOConfig(
            **ctx.trainer_args(), num_generations=params.num_generations, beta=params.beta,
            normalize_advantages=params.normalize_advantages, temperature=params.temperature,
            epsilon=params.epsilon, num_iterations=params.num_iterations,
            max_completion_length=params.max_new_tokens, log_completions=False, **PLAIN_SAMPLING,
        )  # fmt: skip
        return train_online(
            ctx, params, proxy, RLOOTrainer, config, train_prompts(ctx, params),
            lambda n: {"completions": n, "groups": n // params.num_generations},
        )  # fmt: skip
