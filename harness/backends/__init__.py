"""Training backends: how a family of tasks is prepared, trained and scored.

A task names its backend (causal-LM SFT, preference alignment, sentence embeddings); a backend
owns its methods and tasks (one subpackage each: sft/, alignment/, embedding/) and implements the
phases of a run. The one run lifecycle (harness/run/lifecycle.py) calls the phases and owns everything
around them: seeds, the split, callbacks, divergence and pruning, weights, memory, provenance.
Every module and subpackage here is imported on first use, so a new backend is a new folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store.result import read_result
from harness.suite.plugins import (  # noqa: F401 - the lookups, named where backends live
    BACKENDS,
    all_method_names,
    backend_for,
    backend_for_task,
    method_for,
)
from harness.suite.registry import Registry, import_submodules

if TYPE_CHECKING:
    from harness.backends.data import Splits
    from harness.models import ResolvedModel
    from harness.store.result import ResultTable
    from harness.suite.spec import RunSpec


@dataclass
class RunContext:
    """What every phase of one run sees."""

    spec: RunSpec
    out_dir: Path
    device: str  # "cuda" or "cpu"
    method: Any  # the backend's method object for spec.method
    params: Any  # spec.params validated by the method's Params model
    # The run's logged curve: the lifecycle records `loss` (and lr, grad norm) per logging step;
    # a backend may log other series into it (PPO's objectives).
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def split(self) -> str:
        return self.spec.evaluation_split


@dataclass
class Prepared:
    """A loaded run, ready to train. Backends subclass it to carry what their phases need."""

    model: Any
    resolved: ResolvedModel  # where the weights came from (provenance)
    splits: Splits  # the dataset's splits (fingerprint, sizes, overlap checks)
    data_checks: dict[str, Any] = field(default_factory=dict)  # backend-specific checks
    notes: dict[str, Any] = field(default_factory=dict)  # recorded with the run
    weights_dtype: str | None = None  # the dtype the base weights were loaded in
    eval_s: float = 0.0  # evaluation already done while preparing (e.g. scoring the base model)

    @property
    def split_sizes(self) -> dict[str, int]:
        return self.splits.split_sizes


@dataclass
class Trained:
    """What the train phase produced. steps == 0: nothing was trained (a baseline row)."""

    model: Any
    steps: int = 0
    train_s: float = 0.0
    tokens: int | None = None  # tokens processed in training (None: not counted)
    notes: dict[str, Any] = field(default_factory=dict)
    saved_to: Path | None = None  # where the phase saved the trained weights itself, if it did


@dataclass
class Evaluation:
    metrics: dict[str, float]  # on the run's evaluation split
    tables: dict[str, ResultTable] = field(default_factory=dict)  # declared extra result rows
    notes: dict[str, Any] = field(default_factory=dict)


class Backend:
    """A family of tasks: its methods and the phases of one run of it."""

    # Whether tuning trials can report intermediate scores while they train (pruning needs it).
    reports_intermediate: bool = True

    @property
    def methods(self) -> Registry[Any]:
        raise NotImplementedError

    def upstream(self, spec: RunSpec) -> dict[str, RunSpec]:
        """Runs this one starts from (role -> spec), run before it and reused when finished."""
        return {}

    def estimate_memory(self, spec: RunSpec, device: str = "cuda") -> Any:
        """A harness.memory.estimate.Estimate of the run's peak GPU memory, or None when this
        backend has no estimator (its runs then get no budget verdict)."""
        return None

    def prepare(self, run: RunContext) -> Prepared:
        """Load the model and data and set the method up: everything before training."""
        raise NotImplementedError

    def train(self, run: RunContext, prepared: Prepared, callbacks: list) -> Trained:
        """Train (a baseline method trains nothing); `callbacks` are TrainerCallbacks to pass on."""
        raise NotImplementedError

    def evaluate(
        self, run: RunContext, prepared: Prepared, model: Any, *, intermediate: bool = False
    ) -> Evaluation:
        """Score `model` on run.split; `intermediate`: a tuning trial's report while it trains
        (the headline metric is enough)."""
        raise NotImplementedError

    def report(self, db_path: Path, suite: str) -> str | None:
        """An extra section for `ftbench show` (e.g. scores per embedding width), or None."""
        return None


def upstream_dir(run_dir: Path, role: str, run_id: str) -> Path:
    """The folder of a finished upstream run (results/runs/<run_id>, found from this run's
    folder, which may also be a repro folder under results/repro/); a clear error when it did
    not end `ok`."""
    candidates = [base / "runs" / run_id for base in run_dir.parents] + [run_dir.parent / run_id]
    folder = next((c for c in candidates if (c / "result.json").is_file()), candidates[-1])
    result = read_result(folder)
    status = result.status if result else "not run"
    if status != "ok":
        raise RuntimeError(
            f"upstream {role} run {run_id} is {status}: run the suite (it runs stages first), "
            f"or look at {folder}/result.json"
        )
    return folder


import_submodules(__name__)  # every backend package (and shared helper) here registers itself
