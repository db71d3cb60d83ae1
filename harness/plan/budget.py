"""Pre-flight memory verdicts: every run gets one before anything runs (`ftbench plan` prints them).

A run predicted over the suite's budget is either skipped (status `over_budget`, recorded with
the numbers) or adjusted, as the suite's `budget.over_budget` says: gradient checkpointing first,
then smaller micro-batches with more accumulation, so the effective batch size never changes.
Each adjustment is written into the run's spec (`budget_adjustments`), so it is part of its
run_id and recorded with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.memory.calibration import band_for, exact_bytes
from harness.memory.estimate import GB, Estimate, Verdict, verdict
from harness.suite.spec import RunSpec, TrainingConfig, config_hash


@dataclass
class Fitted:
    """A spec as it will run under its budget, with the verdict that decided it."""

    spec: RunSpec  # adjusted when the policy adjusted it
    verdict: Verdict
    estimate: Estimate | None = None
    adjustments: list[str] = field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return self.verdict.fits is False

    @property
    def reason(self) -> str:
        """Why the run is over budget: the verdict and its three largest terms."""
        parts = self.estimate.parts if self.estimate else {}
        biggest = sorted(
            ((k, v) for k, v in parts.items() if k != "total" and v), key=lambda kv: -kv[1]
        )[:3]
        detail = ", ".join(f"{k} {v / GB:.2f} GB" for k, v in biggest)
        return f"over budget: {self.verdict.reason} ({detail})" if detail else self.verdict.reason


def estimate_or_reason(spec: RunSpec, device: str = "cuda") -> tuple[Estimate | None, str]:
    from harness.backends import backend_for
    from harness.models.architectures import ArchitectureUnknownError

    try:
        found = backend_for(spec).estimate_memory(spec, device)
    except ArchitectureUnknownError as exc:
        return None, str(exc)
    if found is None:
        return None, f"no memory estimator for task {spec.dataset.task!r}"
    return found, ""


class BudgetPlanner:
    """Verdicts for the specs of a plan. Specs that differ only in seed, dataset or upstream
    share one (memory does not depend on them: sequences are padded to max_length)."""

    def __init__(self, adjust: bool = True, estimate_without_budget: bool = False) -> None:
        self.adjust = adjust  # False: a verdict only (a locked or stored spec is never changed)
        self.estimate_without_budget = estimate_without_budget  # for `ftbench plan` to print
        self._done: dict[str, Fitted] = {}

    def fit(self, spec: RunSpec) -> Fitted:
        if spec.budget.limit_bytes is None and not self.estimate_without_budget:
            return Fitted(spec, Verdict(None, None, None, "no budget"))
        key = _memory_key(spec)
        done = self._done.get(key)
        if done is None:
            done = self._done[key] = self._fit(spec)
        same = {"training": done.spec.training, "budget_adjustments": done.spec.budget_adjustments}
        return Fitted(spec.model_copy(update=same), done.verdict, done.estimate, done.adjustments)

    def _fit(self, spec: RunSpec) -> Fitted:
        limit = spec.budget.limit_bytes
        found, why = estimate_or_reason(spec)
        band = band_for(spec.method)
        first = verdict(found, limit, why, band)
        if first.fits is not False or spec.budget.over_budget != "adjust" or not self.adjust:
            return Fitted(spec, first, found)
        adjusted = _adjust(spec, limit)
        if adjusted is None:
            reason = f"{first.reason}; no adjustment fits (checkpointing and micro-batch 1 tried)"
            refused = Verdict(False, first.predicted_bytes, limit, reason, first.lower_bytes,
                              first.upper_bytes, first.band)  # fmt: skip
            return Fitted(spec, refused, found)
        new_spec, new_estimate, notes = adjusted
        return Fitted(new_spec, verdict(new_estimate, limit, band=band), new_estimate, notes)


def _memory_key(spec: RunSpec) -> str:
    fields = {"model", "method", "params", "training", "budget", "budget_adjustments"}
    return config_hash(spec.model_dump(mode="json", include=fields))


def _smaller_batches(training: TrainingConfig) -> list[tuple[int, int]]:
    """(micro-batch, accumulation) pairs with the same effective batch, largest first."""
    effective = training.batch_size * training.grad_accum
    return [
        (b, effective // b)
        for b in range(training.batch_size - 1, 0, -1)
        if training.batch_size % b == 0
    ]


def _adjust(spec: RunSpec, limit: int) -> tuple[RunSpec, Estimate, list[str]] | None:
    """The least change whose estimate's upper bound fits the budget, or None when even
    micro-batch 1 with checkpointing and scoring batch 1 does not (the weights and optimizer
    alone are over)."""
    t = spec.training
    tried: list[tuple[dict[str, Any], list[str]]] = []
    checkpointing = {} if t.gradient_checkpointing else {"gradient_checkpointing": True}
    ckpt_note = [] if t.gradient_checkpointing else ["gradient_checkpointing: false -> true"]
    if checkpointing:
        tried.append((checkpointing, ckpt_note))
    for batch, accum in _smaller_batches(t):
        note = f"batch_size: {t.batch_size} -> {batch}, grad_accum: {t.grad_accum} -> {accum}"
        tried.append(
            ({**checkpointing, "batch_size": batch, "grad_accum": accum}, [*ckpt_note, note])
        )
    # Scoring batches change no result, only memory: they are lowered last, after training's.
    final = tried[-1] if tried else ({}, [])
    eval_batch = t.eval_batch_size
    while eval_batch > 1:
        eval_batch //= 2
        note = f"eval_batch_size: {t.eval_batch_size} -> {eval_batch}"
        tried.append(({**final[0], "eval_batch_size": eval_batch}, [*final[1], note]))
    for changes, notes in tried:
        candidate = spec.model_copy(
            update={
                "training": t.model_copy(update=changes),
                "budget_adjustments": [*(spec.budget_adjustments or []), *notes],
            }
        )
        found, _ = estimate_or_reason(candidate)
        if found is None:
            continue
        if band_for(spec.method).bounds(found.total, exact_bytes(found.parts))[1] <= limit:
            return candidate, found, notes
    return None
