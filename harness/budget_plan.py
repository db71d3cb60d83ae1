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

from tqdm.auto import tqdm

from harness.memory_estimate import GB, Estimate, Verdict, verdict
from harness.suite import RunSpec, TrainingConfig


@dataclass
class PlannedRun:
    spec: RunSpec  # as it will run: adjusted when the policy adjusted it
    verdict: Verdict
    estimate: Estimate | None = None
    adjustments: list[str] = field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return self.verdict.fits is False


def estimate_or_reason(spec: RunSpec, device: str = "cuda") -> tuple[Estimate | None, str]:
    from harness.architectures import ArchitectureUnknownError
    from harness.backends import backend_for

    try:
        found = backend_for(spec).estimate_memory(spec, device)
    except ArchitectureUnknownError as exc:
        return None, str(exc)
    if found is None:
        return None, f"no memory estimator for task {spec.dataset.task!r}"
    return found, ""


def _smaller_batches(training: TrainingConfig) -> list[tuple[int, int]]:
    """(micro-batch, accumulation) pairs with the same effective batch, largest first."""
    effective = training.batch_size * training.grad_accum
    return [
        (b, effective // b)
        for b in range(training.batch_size - 1, 0, -1)
        if training.batch_size % b == 0
    ]


def _adjust(spec: RunSpec, limit: int) -> tuple[RunSpec, Estimate, list[str]] | None:
    """The least change that fits the budget, or None when even micro-batch 1 with checkpointing
    and scoring batch 1 does not (the weights and optimizer alone are over)."""
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
        if found is not None and found.total <= limit:
            return candidate, found, notes
    return None


def _memory_key(spec: RunSpec) -> str:
    """What memory depends on: not the seed, and not the dataset (sequences are padded to
    max_length in the estimate)."""
    from harness.suite import config_hash

    fields = {"model", "method", "params", "training", "budget", "budget_adjustments"}
    return config_hash(spec.model_dump(mode="json", include=fields))


def plan_runs(specs: list[RunSpec], progress: bool = True) -> list[PlannedRun]:
    """A verdict for every spec; specs that differ only in seed or dataset share one."""
    planned: list[PlannedRun] = []
    by_config: dict[str, PlannedRun] = {}
    for spec in tqdm(specs, desc="memory plan", unit="run", disable=not progress, leave=False):
        key = _memory_key(spec)
        if key in by_config:
            done = by_config[key]
            same = {
                "training": done.spec.training,
                "budget_adjustments": done.spec.budget_adjustments,
            }
            planned.append(
                PlannedRun(
                    spec.model_copy(update=same), done.verdict, done.estimate, done.adjustments
                )
            )
            continue
        planned.append(_plan_one(spec))
        by_config[key] = planned[-1]
    return planned


def _plan_one(spec: RunSpec) -> PlannedRun:
    limit = spec.budget.limit_bytes
    found, why = estimate_or_reason(spec)
    first = verdict(found, limit, why)
    if first.fits is not False or spec.budget.over_budget != "adjust":
        return PlannedRun(spec, first, found)
    adjusted = _adjust(spec, limit)
    if adjusted is None:
        reason = f"{first.reason}; no adjustment fits (checkpointing and micro-batch 1 tried)"
        return PlannedRun(spec, Verdict(False, first.predicted_bytes, limit, reason), found)
    new_spec, new_estimate, notes = adjusted
    return PlannedRun(new_spec, verdict(new_estimate, limit), new_estimate, notes)


def over_budget_reason(run: PlannedRun) -> str:
    parts = run.estimate.parts if run.estimate else {}
    biggest = sorted(
        ((k, v) for k, v in parts.items() if k != "total" and v), key=lambda kv: -kv[1]
    )[:3]
    detail = ", ".join(f"{k} {v / GB:.2f} GB" for k, v in biggest)
    return f"over budget: {run.verdict.reason} ({detail})" if detail else run.verdict.reason


def format_plan(runs: list[PlannedRun]) -> str:
    """One line per cell (seeds share a verdict): the table `ftbench plan` prints."""
    header = (
        f"{'cell':44s} {'micro-batch':>11s} {'ckpt':>4s} {'weights':>8s} {'grad+opt':>8s} "
        f"{'activ.':>7s} {'logits':>7s} {'peak GB':>8s} {'limit':>6s}  verdict"
    )
    lines = [header, "-" * len(header)]
    seen: set[str] = set()
    for run in runs:
        spec = run.spec
        if spec.cell in seen:
            continue
        seen.add(spec.cell)
        t = spec.training
        parts = run.estimate.parts if run.estimate else {}

        def gb(*keys: str, parts: dict[str, int] = parts) -> str:
            return f"{sum(parts.get(k, 0) for k in keys) / GB:.2f}" if parts else "-"

        limit = f"{run.verdict.limit_bytes / GB:.1f}" if run.verdict.limit_bytes else "-"
        fits = {True: "fits", False: "OVER", None: "?"}[run.verdict.fits]
        verdict_text = fits + (f" after {'; '.join(run.adjustments)}" if run.adjustments else "")
        if run.verdict.fits is None and not parts:
            verdict_text += f" ({run.verdict.reason})"
        lines.append(
            f"{spec.cell[:44]:44s} {f'{t.batch_size}x{t.max_length}':>11s} "
            f"{'on' if t.gradient_checkpointing else 'off':>4s} "
            f"{gb('weights_frozen', 'weights_trainable', 'quant_constants'):>8s} "
            f"{gb('gradients', 'optimizer'):>8s} {gb('activations'):>7s} {gb('logits_loss'):>7s} "
            f"{gb('total'):>8s} {limit:>6s}  {verdict_text}"
        )
    return "\n".join(lines)


def apply_budget(
    specs: list[RunSpec],
) -> tuple[list[RunSpec], dict[str, tuple[str, str]], list[str]]:
    """Specs as they will run under their budgets; the over-budget ones' (status, reason) by
    run_id, for the runner to record instead of running them; and what was changed, to print."""
    budgeted = [s for s in specs if s.budget.limit_bytes is not None]
    planned = {id(s): p for s, p in zip(budgeted, plan_runs(budgeted), strict=True)}
    out: list[RunSpec] = []
    over: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for spec in specs:
        run = planned.get(id(spec))
        out.append(run.spec if run else spec)
        if run and run.adjustments:
            notes.append(f"{spec.label}: {'; '.join(run.adjustments)} ({run.verdict.reason})")
        if run and run.over_budget:
            over[run.spec.run_id] = ("over_budget", over_budget_reason(run))
    if over:
        notes.append(
            f"{len(over)} of {len(specs)} runs are predicted over budget (recorded, not run)"
        )
    return out, over, notes


def fit_to_budget(spec: RunSpec) -> tuple[RunSpec, str | None]:
    """The spec as it will run under its budget, and the over-budget reason if it cannot."""
    if spec.budget.limit_bytes is None:
        return spec, None
    (run,) = plan_runs([spec], progress=False)
    return run.spec, over_budget_reason(run) if run.over_budget else None
