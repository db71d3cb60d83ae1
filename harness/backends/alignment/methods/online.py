"""What the online methods (grpo, rloo, online_dpo) share: the proxy reward model as the reward
function TRL's trainers call, one way to build and train their TRL trainer, and the check that a
step holds whole groups of completions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.backends import Trained
from harness.backends.alignment.methods.base import timed_train
from harness.backends.lora import policy_lora

# Plain sampling at the method's temperature (no top-k/top-p cut): how the policies are scored.
PLAIN_SAMPLING = {"top_k": 0, "top_p": 1.0}


def proxy_reward_function(proxy: Any) -> Any:
    """The proxy reward model as a TRL reward function: the score of prompt + completion (the
    text PPO's proxy scores)."""

    def proxy_reward(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return proxy.score([p + c for p, c in zip(prompts, completions, strict=True)])

    return proxy_reward


def check_whole_groups(training: Any, num_generations: int) -> None:
    """GRPO's and RLOO's generation batch (batch_size x grad_accum completions) must hold whole
    groups of num_generations completions of one prompt."""
    if (training.batch_size * training.grad_accum) % num_generations:
        raise ValueError(
            f"training.batch_size x grad_accum ({training.batch_size * training.grad_accum}) must "
            f"be a multiple of params.num_generations ({num_generations}): a step holds whole "
            "groups"
        )


def train_online(
    ctx: Any, params: Any, proxy: Any, trainer_class: type, config: Any, prompts: list[str],
    notes: Callable[[int], dict[str, Any]],
) -> Trained:  # fmt: skip
    """`trainer_class` (a TRL online trainer, configured by `config`) trained from the start
    policy on `prompts`, the proxy as its reward function. `notes(n)` gives the run's notes from
    n, the examples the steps held (batch_size x grad_accum a step)."""
    from datasets import Dataset

    trainer = trainer_class(
        model=ctx.load_start(trains_weights=params.peft == "full"),
        reward_funcs=proxy_reward_function(proxy), args=config,
        train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks, peft_config=policy_lora(params),
    )  # fmt: skip
    train_s = timed_train(trainer)
    t, steps = ctx.spec.training, trainer.state.global_step
    return Trained(
        trainer.model, steps=steps, train_s=train_s,
        tokens=int(trainer.state.num_input_tokens_seen) or None,
        notes={**notes(steps * t.batch_size * t.grad_accum), "prompts": len(prompts)},
    )  # fmt: skip
