"""What the online methods (grpo, rloo, online_dpo) share: the proxy reward model as the reward
function TRL's trainers call, and the check that a step holds whole groups of completions."""

from __future__ import annotations

from typing import Any


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
