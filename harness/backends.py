"""Training backends: how a family of tasks is trained and scored.

A task names its backend (causal-LM SFT, sentence embeddings, preference alignment); a backend
owns its method registry and its run function. The worker, the suite checks and the tuner only
go through here, so a new family plugs in without a branch on task or method names anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.registry import Registry

if TYPE_CHECKING:
    from harness.suite import RunSpec
    from harness.train import RunOutput


class Backend:
    """A family of tasks: its methods and how one RunSpec is trained, evaluated and measured."""

    @property
    def methods(self) -> Registry[Any]:
        raise NotImplementedError

    def run(
        self,
        spec: RunSpec,
        out_dir: Path,
        progress_path: Path | None = None,
        extra_callbacks: list | None = None,
    ) -> RunOutput:
        raise NotImplementedError

    def upstream(self, spec: RunSpec) -> dict[str, RunSpec]:
        """Runs this one starts from (role -> spec), run before it and reused when finished."""
        return {}

    def estimate_memory(self, spec: RunSpec, device: str = "cuda") -> Any:
        """A harness.memory_estimate.Estimate of the run's peak GPU memory, or None when this
        backend has no estimator (its runs then get no budget verdict)."""
        return None


BACKENDS: Registry[Backend] = Registry("backend")


@BACKENDS.register_instance("sft")
class SftBackend(Backend):
    """Causal LMs trained with TRL's SFTTrainer and scored by their task (harness/train.py)."""

    @property
    def methods(self) -> Registry[Any]:
        from harness.methods import METHODS

        return METHODS

    def run(self, spec, out_dir, progress_path=None, extra_callbacks=None):
        from harness.train import run_training

        return run_training(spec, out_dir, progress_path, extra_callbacks)

    def estimate_memory(self, spec, device="cuda"):
        from harness.memory_estimate import estimate_spec

        return estimate_spec(spec, device)


def backend_for_task(task_name: str) -> Backend:
    from harness.tasks import TASKS

    return BACKENDS.get(TASKS.get(task_name).backend)


def backend_for(spec: RunSpec) -> Backend:
    return backend_for_task(spec.dataset.task)


def method_for(spec: RunSpec) -> Any:
    return backend_for(spec).methods.get(spec.method)


def all_method_names() -> dict[str, list[str]]:
    """Backend name -> its method names (for `ftbench ls` and error messages)."""
    return {name: BACKENDS.get(name).methods.names() for name in BACKENDS.names()}
