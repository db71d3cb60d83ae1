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
    timed_train,
    train_prompts,
)
from harness.backends.alignment.methods.online import check_whole_groups, proxy_reward_function
from harness.backends.lora import policy_lora


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
        from datasets import Dataset
        from trl import RLOOConfig, RLOOTrainer

        t = ctx.spec.training
        check_whole_groups(t, params.num_generations)
        prompts = train_prompts(ctx, params)
        config = RLOOConfig(
            **ctx.trainer_args(), num_generations=params.num_generations, beta=params.beta,
            normalize_advantages=params.normalize_advantages, temperature=params.temperature,
            epsilon=params.epsilon, num_iterations=params.num_iterations,
            max_completion_length=params.max_new_tokens, top_k=0, top_p=1.0,
            log_completions=False,
        )  # fmt: skip
        trainer = RLOOTrainer(
            model=ctx.load_start(trains_weights=params.peft == "full"),
            reward_funcs=proxy_reward_function(proxy), args=config,
            train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=ctx.tokenizer,
            callbacks=ctx.callbacks, peft_config=policy_lora(params),
        )  # fmt: skip
        train_s = timed_train(trainer)
        completions = trainer.state.global_step * t.batch_size * t.grad_accum
        return Trained(
            trainer.model, steps=trainer.state.global_step, train_s=train_s,
            tokens=int(trainer.state.num_input_tokens_seen) or None,
            notes={"completions": completions, "prompts": len(prompts),
                   "groups": completions // params.num_generations},
        )  # fmt: skip
