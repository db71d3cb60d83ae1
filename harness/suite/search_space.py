"""The suite's `tune:` block and per-method search spaces (types only; Optuna is built lazily).

A search dimension maps one-to-one onto Optuna's `trial.suggest_*`; a key names either a training
field (learning_rate, batch_size, ...) or a parameter of the method.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.suite.config import StrictModel


class SearchDim(StrictModel):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchDim:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty `choices` list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes `choices`, not low/high")
            return self
        if self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"a {self.type} dimension needs low <= high")
        if self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes low/high, not `choices`")
        if self.log and (self.step is not None or self.low <= 0):
            raise ValueError("log scale needs low > 0 and no step")
        if self.type == "int" and not all(
            float(v).is_integer() for v in (self.low, self.high, self.step or 1)
        ):
            raise ValueError("an int dimension needs integer low/high/step")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(
                name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_categorical(name, self.choices)


class SamplerConfig(StrictModel):
    type: Literal["tpe", "random"] = "tpe"
    seed: int = 0

    def build(self, constant_liar: bool = False) -> Any:
        import optuna

        if self.type == "random":
            return optuna.samplers.RandomSampler(seed=self.seed)
        return optuna.samplers.TPESampler(seed=self.seed, constant_liar=constant_liar)


class PrunerConfig(StrictModel):
    type: Literal["median", "hyperband", "threshold", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0)  # median: trials that finish before any pruning
    n_warmup_steps: int = Field(0, ge=0)  # median: steps before a trial can be pruned
    min_resource: int = Field(1, ge=1)  # hyperband, in reports (eval rounds)
    reduction_factor: int = Field(3, ge=2)  # hyperband
    lower: float | None = None  # threshold: prune below
    upper: float | None = None  # threshold: prune above

    def build(self, max_reports: int) -> Any:
        import optuna

        if self.type == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.n_startup_trials, n_warmup_steps=self.n_warmup_steps
            )
        if self.type == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=self.min_resource,
                max_resource=max(max_reports, self.min_resource),
                reduction_factor=self.reduction_factor,
            )
        if self.type == "threshold":
            return optuna.pruners.ThresholdPruner(lower=self.lower, upper=self.upper)
        return optuna.pruners.NopPruner()


class TuneConfig(StrictModel):
    """Equal tuning budgets: every cell (method x model x dataset) gets `trials` counted trials."""

    trials: int = Field(ge=1)
    count: list[Literal["complete", "pruned", "failed"]] = ["complete", "pruned"]
    max_failed: int = Field(3, ge=0)  # uncounted failed trials allowed per cell before giving up
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    metric: str | None = None  # default: the dataset's headline metric
    split: Literal["validation"] = "validation"  # the objective never sees the test split
    eval_every: int | None = Field(None, ge=1)  # steps between validation reports; default max/4
    seed: int = 0  # the training seed of every trial


class TrialRef(StrictModel):
    """Carried by a trial's RunSpec: where its study lives and how to report to it."""

    study_name: str
    storage: str  # journal file path, or an Optuna storage URL
    number: int
    metric: str
    direction: Literal["maximize", "minimize"]
    eval_every: int
    max_reports: int
    pruner: PrunerConfig


class TunedRef(StrictModel):
    """Carried by a tuned run's RunSpec: the tuning that chose its parameters."""

    study_name: str
    trials: int
    best_trial: int
    best_value: float
    metric: str
