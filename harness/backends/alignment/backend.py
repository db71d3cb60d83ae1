"""The phases of an alignment run: the method trains one stage (a reward model, or a policy from
the start policy against the proxy) and scores it (held-out pair accuracy, or the judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.backends import BACKENDS, Backend, RunContext, Trained, checks
from harness.backends.alignment.frontier import report
from harness.backends.alignment.methods import ALIGN_METHODS
from harness.backends.alignment.methods.base import AlignContext, AlignPrepared
from harness.backends.alignment.task import partitions
from harness.models import load_tokenizer, resolve_model
from harness.suite.tasks import task_for


@BACKENDS.register_instance("alignment")
class AlignmentBackend(Backend):
    # Policy trainers (PPO's own loop above all) do not report intermediate scores: trials of an
    # alignment cell run to the end and are never pruned.
    reports_intermediate = False

    @property
    def methods(self):
        return ALIGN_METHODS

    def upstream(self, spec):
        method = ALIGN_METHODS.get(spec.method)
        return method.upstream(spec, method.Params.model_validate(spec.params))

    def estimate_memory(self, spec, device="cuda"):
        """The method's estimate (policy methods: alignment/memory.py), or NotEstimated naming
        what is not modelled."""
        method = ALIGN_METHODS.get(spec.method)
        return method.estimate_memory(spec, method.Params.model_validate(spec.params), device)

    def prepare(self, run: RunContext) -> AlignPrepared:
        resolved = resolve_model(run.spec.model)
        tokenizer = load_tokenizer(resolved)
        tokenizer.padding_side = "left"  # generation (PPO rollouts) needs prompts left-padded
        parts = partitions(run.spec.dataset, trial=run.spec.trial is not None)
        return AlignPrepared(
            model=None,
            resolved=resolved,
            splits=parts.splits,
            data_checks={
                **checks.tokenizer_checks(tokenizer),
                "reward_judge_overlap": parts.reward_judge_overlap,
            },
            tokenizer=tokenizer,
            parts=parts,
            task=task_for(run.spec.dataset),
        )

    def train(self, run: RunContext, prepared: AlignPrepared, callbacks: list) -> Trained:
        return run.method.train(AlignContext(run, prepared, callbacks), run.params)

    def evaluate(self, run, prepared: AlignPrepared, model: Any, *, intermediate=False):
        return run.method.evaluate(AlignContext(run, prepared), run.params, model)

    def report(self, db_path: Path, suite: str) -> str | None:

        return report(db_path, suite)
