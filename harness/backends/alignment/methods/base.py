"""The alignment method interface, and what every policy method shares.

A method trains one stage and scores it. Policy methods (start, ppo, dpo, kto) start from the same
policy, need two upstream reward-model stages (the proxy they may optimise, and a separate judge
that scores them), and are evaluated the same way; only `train_policy` differs between them. What
a prompt is and which pairs a reward model learns from is the task's (task.py: AlignmentTask).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.backends import Evaluation, Prepared, RunContext, Trained, upstream_dir
from harness.backends.alignment.generation import evaluate_policy
from harness.backends.alignment.judges import IndependentJudge, load_judge
from harness.backends.alignment.memory import cached_policy_estimate
from harness.backends.alignment.reward import load_scorer
from harness.backends.alignment.stages import StageConfig, stage_spec
from harness.backends.alignment.task import AlignmentTask, Partitions
from harness.backends.trainer_args import trainer_kwargs, weights_dtype
from harness.memory.estimate import NotEstimated
from harness.models import load_causal_lm
from harness.suite.config import StrictModel, optional
from harness.suite.registry import Registry


@dataclass
class AlignPrepared(Prepared):
    tokenizer: Any = None
    parts: Partitions | None = None
    task: AlignmentTask | None = None
    scorers: dict[str, Any] = field(default_factory=dict)  # role -> Scorer, loaded once a run

    @property
    def split_sizes(self) -> dict[str, int]:
        return self.parts.split_sizes


@dataclass
class AlignContext:
    """One phase of an alignment run: the run, what was prepared and the trainer callbacks."""

    run: RunContext
    prepared: AlignPrepared
    callbacks: list = field(default_factory=list)  # progress, loss curve, NaN stop, state probe

    @property
    def spec(self) -> Any:
        return self.run.spec

    @property
    def device(self) -> str:
        return self.run.device

    @property
    def out_dir(self) -> Path:
        return self.run.out_dir

    @property
    def curve(self) -> list[dict[str, Any]]:
        return self.run.curve

    @property
    def tokenizer(self) -> Any:
        return self.prepared.tokenizer

    @property
    def parts(self) -> Partitions:
        return self.prepared.parts

    @property
    def task(self) -> AlignmentTask:
        return self.prepared.task

    @property
    def resolved(self) -> Any:
        return self.prepared.resolved

    def load_start(self, trains_weights: bool = False) -> Any:
        """The starting policy: the suite's model as it is (an instruct model), in the dtype
        trainer_args.weights_dtype gives (fp32 where its weights train or on CPU, the run's half
        precision for a frozen base under LoRA or a copy that only samples)."""
        import torch

        t = self.spec.training
        dtype = weights_dtype(trains_weights, self.device, t.precision)
        return load_causal_lm(self.resolved, dtype=getattr(torch, dtype)).to(self.device)

    def upstream_dir(self, role: str) -> Path:

        if not self.spec.upstream or role not in self.spec.upstream:
            raise RuntimeError(f"{self.spec.label}: no upstream {role!r} run recorded on the spec")
        return upstream_dir(self.out_dir, role, self.spec.upstream[role])

    def trainer_args(self, **kwargs: Any) -> dict[str, Any]:
        """The TrainingArguments every backend sets from the spec; alignment trainers never
        checkpoint activations (alignment/memory.py estimates them so, whatever the spec says)."""
        return {**trainer_kwargs(self.spec, self.out_dir, self.device),
                "gradient_checkpointing": False, **kwargs}  # fmt: skip


class AlignMethod:
    Params: ClassVar[type[StrictModel]]
    trains: ClassVar[bool] = True  # False: scores the model as loaded (a baseline row)

    def upstream(self, spec: Any, params: Any) -> dict[str, Any]:
        return {}

    def train(self, ctx: AlignContext, params: Any) -> Trained:
        raise NotImplementedError

    def evaluate(self, ctx: AlignContext, params: Any, model: Any) -> Evaluation:
        raise NotImplementedError

    # Why this method's runs get no memory estimate (`ftbench plan` prints it as the verdict).
    not_estimated: ClassVar[str] = "its training is not modelled yet"

    def estimate_memory(self, spec: Any, params: Any, device: str) -> Any:
        """A harness.memory.estimate.Estimate of the run's peak GPU memory."""

        raise NotEstimated(f"not estimated: {spec.method}: {self.not_estimated}")


ALIGN_METHODS: Registry[AlignMethod] = Registry("alignment method")
register = ALIGN_METHODS.register_instance


class PolicyParams(StrictModel):
    reward: StageConfig = StageConfig()
    judge: StageConfig = StageConfig(seed_offset=1000)
    # a judge of another kind beside the trained one (judges.py); unset: VADER, offline. Optional
    # so the run_ids of policies recorded before it stay what they were (the golden test).
    independent_judge: IndependentJudge | None = optional()

    @property
    def independent(self) -> IndependentJudge:
        return self.independent_judge or IndependentJudge()

    prompt_words: int = Field(8, ge=1)  # a prompt is a review's first words
    max_new_tokens: int = Field(24, ge=1)
    train_prompts: int | None = Field(None, ge=1)  # cap on policy prompts (the data budget)
    eval_prompts: int | None = Field(None, ge=1)  # default: every held-out review
    peft: Literal["lora", "full"] = "lora"
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)


class PolicyMethod(AlignMethod):
    Params: ClassVar[type[StrictModel]] = PolicyParams

    def upstream(self, spec: Any, params: PolicyParams) -> dict[str, Any]:
        if params.reward.seed_offset == params.judge.seed_offset:
            raise ValueError("params.judge.seed_offset must differ from params.reward.seed_offset")
        return {role: stage_spec(spec, role, getattr(params, role)) for role in ("reward", "judge")}

    def train_policy(self, ctx: AlignContext, params: Any, proxy: Any) -> Trained:
        """Train from the start policy; `proxy` is the reward model's Scorer."""
        raise NotImplementedError

    def memory_shape(self, params: Any) -> Any:
        """What training holds beyond an SFT step of the policy (a memory.PreferenceShape);
        None: nothing trains, the run only scores."""
        return None

    def estimate_memory(self, spec: Any, params: Any, device: str) -> Any:
        return cached_policy_estimate(self, spec, params, self.memory_shape(params), device)

    @staticmethod
    def scorer(ctx: AlignContext, params: PolicyParams, role: str) -> Any:
        """The finished `role` stage's reward model, loaded once per run."""

        if role not in ctx.prepared.scorers:
            stage = getattr(params, role)
            batch = ctx.spec.training.eval_batch_size
            model = stage.model or ctx.spec.model
            ctx.prepared.scorers[role] = load_scorer(
                model, ctx.upstream_dir(role), stage.max_length, batch, ctx.device
            )
        return ctx.prepared.scorers[role]

    def train(self, ctx: AlignContext, params: PolicyParams) -> Trained:
        if ctx.spec.upstream["reward"] == ctx.spec.upstream["judge"]:
            raise AssertionError("the judge must be a different run than the reward model")
        return self.train_policy(ctx, params, self.scorer(ctx, params, "reward"))

    def evaluate(self, ctx: AlignContext, params: PolicyParams, model: Any) -> Evaluation:

        proxy, judge = (self.scorer(ctx, params, role) for role in ("reward", "judge"))
        held_out = ctx.parts.held_out[: params.eval_prompts]
        prompts = [ctx.task.prompt(r, params.prompt_words) for r in held_out]
        batch = ctx.spec.training.eval_batch_size
        independent = load_judge(params.independent, ctx.device, batch)
        metrics = evaluate_policy(
            model, ctx.load_start(), proxy, judge, ctx.tokenizer, prompts,
            params.max_new_tokens, ctx.spec.seed, batch, independent=independent,
        )  # fmt: skip
        notes = {
            "eval_prompts": len(prompts),
            # different reviews can open with the same words: counted, not hidden
            "eval_prompts_seen_in_training": len(set(prompts) & set(train_prompts(ctx, params))),
            "eval_split": ctx.parts.held_out_split,
            "sampling": "temperature 1.0, top_k 0, top_p 1.0; policy and start share the seed",
            "independent_judge": params.independent.model_dump(mode="json", exclude_none=True),
        }
        return Evaluation(metrics, notes=notes)


def train_prompts(ctx: AlignContext, params: PolicyParams) -> list[str]:
    """The policy partition's prompts (review openings, or the data's prompts): what every
    policy method trains on."""
    policy = ctx.parts.policy[: params.train_prompts]
    return [ctx.task.prompt(r, params.prompt_words) for r in policy]


def timed_train(trainer: Any) -> float:
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0
