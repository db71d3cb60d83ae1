"""RunSpec: one fully resolved run, and the config blocks it is made of.

Everything that determines a run's result is here and nothing else; its hash is the run_id. These
models are data only: turning a suite file into RunSpecs is harness/suite/suite_file.py, deciding how each
will run (budget, upstream stages, availability) is harness/plan/plan.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.suite.budget_profile import Budget
from harness.suite.config import StrictModel, optional
from harness.suite.plugins import ARCHITECTURES, DATA_SOURCES, MODEL_ASSETS
from harness.suite.search_space import TrialRef, TunedRef
from harness.suite.tasks import TASKS

Precision = Literal["fp32", "fp16", "bf16"]

__all__ = [
    "Budget", "DatasetSpec", "Determinism", "ModelSpec", "Precision", "RunSpec", "TrainingConfig",
    "config_hash",
]  # fmt: skip


class TrainingConfig(StrictModel):
    """Training settings shared by every method; a method or grid override may change any."""

    max_steps: int = Field(100, ge=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    learning_rate: float = Field(2.0e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: str = "linear"
    optimizer: str = "adamw_torch"
    max_length: int = Field(256, ge=8)
    # TRL's SFT loss: None = TRL's default `chunked_nll` (the head runs in chunks of 256 tokens);
    # `nll` materialises batch x length x vocab logits, upcast to fp32.
    loss_type: Literal["chunked_nll", "nll"] | None = None
    # LLaMA-Factory's knobs for causal-LM SFT (optional: unset, a run_id is what it was).
    # NEFTune: uniform noise of this scale on the input embeddings while training.
    neftune_noise_alpha: float | None = optional(gt=0)
    packing: bool | None = optional()  # TRL's packing: several examples per row, no padding
    logging_steps: int = Field(1, ge=1)
    eval_batch_size: int = Field(16, ge=1)
    precision: Precision = "fp32"
    gradient_checkpointing: bool = False
    save_weights: bool = True
    timeout_s: int = Field(1800, ge=1)


class Determinism(StrictModel):
    """Seeds are always set (Python, NumPy, torch, Trainer seed and data order) from the run seed.

    `strict` adds deterministic kernels (torch.use_deterministic_algorithms, cuDNN deterministic,
    CUBLAS_WORKSPACE_CONFIG) and pins the CPU thread count, so a CPU run is bit-identical when
    repeated. `rel_tol`/`abs_tol` are what `ftbench repro` allows where results are not exact
    (GPU, or not strict); they do not change a run, so they are not part of its run_id.
    """

    strict: bool = False
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads; strict pins 1 when unset
    rel_tol: float = Field(0.02, ge=0)
    abs_tol: float = Field(0.0, ge=0)

    @property
    def threads(self) -> int | None:
        """The torch thread count to set (None: leave torch's default)."""
        return self.num_threads or (1 if self.strict else None)


REPRO_ONLY_FIELDS = {"rel_tol", "abs_tol"}  # how results are compared, not how they are made


class ModelSpec(StrictModel):
    """Exactly one of: a named offline `asset`, a `hub` id (with `revision`), or a local `path`."""

    asset: str | None = None
    hub: str | None = None
    revision: str = "main"
    path: str | None = None
    # The catalogued shape (harness/models/architectures/<name>.json) when it cannot be found by
    # hub id.
    architecture: str | None = None
    # `random`: a systems-only run (memory, throughput) on randomly initialised weights built
    # from the architecture; its quality metrics never enter rankings.
    weights: Literal["pretrained", "random"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in ("asset", "hub", "path") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of asset, hub, path (got {given or 'none'})")
        if self.asset:
            MODEL_ASSETS.get(self.asset)
        if self.architecture:
            ARCHITECTURES.get(self.architecture)  # unknown: fails with the known ones listed
        return self

    @property
    def systems_only(self) -> bool:
        return self.weights == "random"


class DatasetSpec(StrictModel):
    source: str
    options: dict[str, Any] = Field(default_factory=dict)
    task: str
    splits: dict[Literal["train", "validation", "test"], int] = Field(
        default_factory=lambda: {"train": 1000, "validation": 100, "test": 200}
    )
    split_seed: int = 0
    metric: str | None = None  # the headline metric; defaults to the task's primary metric

    @model_validator(mode="after")
    def _known(self) -> DatasetSpec:
        source = DATA_SOURCES.get(self.source)
        source.Options.model_validate(self.options)
        task = TASKS.get(self.task)
        if self.metric is not None and self.metric not in task.metric_names():
            raise ValueError(
                f"metric {self.metric!r} is not produced by task {self.task!r}; "
                f"choose one of {sorted(task.metric_names())}"
            )
        for split in ("train", "test"):
            if self.splits.get(split, 0) < 1:
                raise ValueError(f"splits.{split} must be at least 1")
        return self

    @property
    def headline_metric(self) -> str:
        return self.metric or TASKS.get(self.task).primary_metric


class RunSpec(StrictModel):
    """One fully resolved run: everything that determines its result, and nothing else."""

    suite: str
    suite_version: int
    method_key: str
    method: str
    params: dict[str, Any]
    model_key: str
    model: ModelSpec
    dataset_key: str
    dataset: DatasetSpec
    training: TrainingConfig
    seed: int
    budget: Budget
    trial: TrialRef | None = None  # set on tuning trials
    tuned: TunedRef | None = None  # set on re-runs of a cell's best trial
    determinism: Determinism | None = None
    budget_adjustments: list[str] | None = None  # set when the budget policy changed training
    upstream: dict[str, str] | None = None  # role -> run_id of a run this one starts from
    # A method entry's `tapt:` (task-adaptive pre-training, harness/backends/sft/tapt.py): the
    # backend validates it and derives the stage the run starts from. None: not in the hash.
    tapt: dict[str, Any] | None = None

    @property
    def resolved(self) -> dict[str, Any]:
        # Unset optional fields are left out, so adding one later does not change old run_ids;
        # repro tolerances are left out too: they do not affect what a run computes.
        return self.model_dump(
            mode="json", exclude_none=True, exclude={"determinism": REPRO_ONLY_FIELDS}
        )

    @property
    def determinism_settings(self) -> Determinism:
        return self.determinism or Determinism()

    @property
    def run_id(self) -> str:
        return config_hash(self.resolved)[:16]

    @property
    def origin(self) -> str:
        return "trial" if self.trial else "tuned" if self.tuned else "run"

    @property
    def evaluation_split(self) -> str:
        """A tuning trial is scored on validation only; the test split is for final runs."""
        return "validation" if self.trial else "test"

    @property
    def cell(self) -> str:
        return f"{self.method_key}·{self.model_key}·{self.dataset_key}"

    @property
    def label(self) -> str:
        suffix = f"·trial{self.trial.number}" if self.trial else "·tuned" if self.tuned else ""
        return f"{self.cell}·s{self.seed}{suffix}"


def config_hash(obj: Any) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
