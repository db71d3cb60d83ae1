"""The alignment method interface, and what every policy method shares.

A method runs one stage. Policy methods (start, ppo, dpo, kto) start from the same policy, need
two upstream reward-model stages (the proxy they may optimise, and a separate judge that scores
them), and are evaluated the same way; only `train_policy` differs between them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.alignment.task import Partitions, opening
from harness.config import StrictModel
from harness.models import ResolvedModel, load_causal_lm
from harness.registry import Registry
from harness.suite import ModelSpec


@dataclass
class AlignContext:
    spec: Any  # RunSpec
    resolved: ResolvedModel
    tokenizer: Any
    device: str
    out_dir: Path
    parts: Partitions
    callbacks: list  # progress, loss curve, NaN stop (harness.train.loss_curve_callbacks)
    curve: list[dict[str, Any]]

    def load_start(self) -> Any:
        """The starting policy: the suite's model as it is (an instruct model)."""
        return load_causal_lm(self.resolved).to(self.device)

    def upstream_dir(self, role: str) -> Path:
        from harness.alignment.reward import upstream_dir

        if not self.spec.upstream or role not in self.spec.upstream:
            raise RuntimeError(f"{self.spec.label}: no upstream {role!r} run recorded on the spec")
        return upstream_dir(self.out_dir, role, self.spec.upstream[role])


@dataclass
class StageResult:
    model: Any
    metrics: dict[str, float]
    train_s: float = 0.0
    train_tokens: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


class AlignMethod:
    Params: ClassVar[type[StrictModel]]

    def upstream(self, spec: Any, params: Any) -> dict[str, Any]:
        return {}

    def run(self, ctx: AlignContext, params: Any) -> StageResult:
        raise NotImplementedError


ALIGN_METHODS: Registry[AlignMethod] = Registry("alignment method")
register = ALIGN_METHODS.register_instance


class StageConfig(StrictModel):
    """How a reward-model stage is trained. It is part of every policy method's params (same
    defaults everywhere), so the stage's run_id follows from them and cells share the stage."""

    max_steps: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1.0e-4, gt=0)
    max_length: int = Field(64, ge=8)
    r: int = Field(8, ge=1)
    seed_offset: int = 0  # stage seed = run seed + offset
    model: ModelSpec | None = None  # backbone; default the policy's model
    timeout_s: int = Field(1800, ge=1)


class PolicyParams(StrictModel):
    reward: StageConfig = StageConfig()
    judge: StageConfig = StageConfig(seed_offset=1000)
    prompt_words: int = Field(8, ge=1)  # a prompt is a review's first words
    max_new_tokens: int = Field(24, ge=1)
    train_prompts: int | None = Field(None, ge=1)  # cap on policy prompts (the data budget)
    eval_prompts: int | None = Field(None, ge=1)  # default: every held-out review
    peft: Literal["lora", "full"] = "lora"
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)


def policy_lora(params: PolicyParams) -> Any:
    if params.peft == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=params.r, lora_alpha=params.alpha, lora_dropout=0.0, target_modules="all-linear",
        task_type="CAUSAL_LM",
    )  # fmt: skip


class PolicyMethod(AlignMethod):
    Params: ClassVar[type[StrictModel]] = PolicyParams

    def upstream(self, spec: Any, params: PolicyParams) -> dict[str, Any]:
        from harness.alignment.methods.reward_model import stage_spec

        if params.reward.seed_offset == params.judge.seed_offset:
            raise ValueError("params.judge.seed_offset must differ from params.reward.seed_offset")
        return {role: stage_spec(spec, role, getattr(params, role)) for role in ("reward", "judge")}

    def train_policy(self, ctx: AlignContext, params: Any, proxy: Any) -> StageResult:
        """Train from the start policy; `proxy` is the reward model's Scorer."""
        raise NotImplementedError

    @staticmethod
    def scorer(ctx: AlignContext, params: PolicyParams, role: str) -> Any:
        from harness.alignment.reward import load_scorer

        stage = getattr(params, role)
        batch = ctx.spec.training.eval_batch_size
        model = stage.model or ctx.spec.model
        return load_scorer(model, ctx.upstream_dir(role), stage.max_length, batch, ctx.device)

    def run(self, ctx: AlignContext, params: PolicyParams) -> StageResult:
        from harness.alignment.generation import evaluate_policy

        proxy, judge = (self.scorer(ctx, params, role) for role in ("reward", "judge"))
        if ctx.spec.upstream["reward"] == ctx.spec.upstream["judge"]:
            raise AssertionError("the judge must be a different run than the reward model")
        result = self.train_policy(ctx, params, proxy)
        held_out = ctx.parts.held_out[: params.eval_prompts]
        prompts = [opening(r["text"], params.prompt_words) for r in held_out]
        t0 = time.perf_counter()
        result.metrics = evaluate_policy(
            result.model, ctx.load_start(), proxy, judge, ctx.tokenizer, prompts,
            params.max_new_tokens, ctx.spec.seed, ctx.spec.training.eval_batch_size,
        )  # fmt: skip
        result.notes.update(
            eval_prompts=len(prompts),
            # different reviews can open with the same words: counted, not hidden
            eval_prompts_seen_in_training=len(set(prompts) & set(train_prompts(ctx, params))),
            eval_split=ctx.parts.held_out_split,
            eval_s=time.perf_counter() - t0,
            sampling="temperature 1.0, top_k 0, top_p 1.0; policy and start share the seed",
        )
        return result


def train_prompts(ctx: AlignContext, params: PolicyParams) -> list[str]:
    """The policy partition's review openings: what every policy method trains on."""
    policy = ctx.parts.policy[: params.train_prompts]
    return [opening(r["text"], params.prompt_words) for r in policy]
