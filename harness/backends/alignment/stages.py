"""The reward-model stages a policy run starts from: the proxy (`reward`) and the `judge`.

A stage is an ordinary run whose spec is derived from the policy's (harness/plan/plan.py plans it
before the policy and links the two by run_id), so every policy cell of a seed shares it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.suite.config import StrictModel
from harness.suite.spec import ModelSpec, RunSpec, TrainingConfig


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


class RewardParams(StrictModel):
    role: Literal["reward", "judge"] = "reward"
    r: int = Field(8, ge=1)


def stage_spec(spec: Any, role: str, stage: Any) -> Any:
    """The reward-model RunSpec a policy spec starts from: derived only from the stage config,
    model, dataset, budget and seed, so every policy cell of a seed shares it."""
    return RunSpec(
        suite=spec.suite,
        suite_version=spec.suite_version,
        method_key="reward_model" if role == "reward" else "judge",
        method="reward_model",
        params=RewardParams(role=role, r=stage.r).model_dump(mode="json"),
        model_key=spec.model_key if stage.model is None else _model_key(stage.model),
        model=stage.model or spec.model,
        dataset_key=spec.dataset_key,
        dataset=spec.dataset.model_copy(update={"metric": "reward_accuracy"}),
        training=TrainingConfig(
            max_steps=stage.max_steps,
            batch_size=stage.batch_size,
            learning_rate=stage.learning_rate,
            max_length=stage.max_length,
            eval_batch_size=spec.training.eval_batch_size,
            timeout_s=stage.timeout_s,
            precision=spec.training.precision,
        ),  # fmt: skip
        seed=spec.seed + stage.seed_offset,
        budget=spec.budget,
        determinism=spec.determinism,
    )


def _model_key(model: Any) -> str:
    return (model.asset or model.hub or Path(model.path).name).split("/")[-1]
