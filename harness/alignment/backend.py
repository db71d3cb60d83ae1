"""The `alignment` backend: preference alignment stages as recorded runs.

A policy cell (start / ppo / dpo / kto) names its reward-model and judge stages as upstream runs;
the suite runs them first (once per seed, shared by every cell) and the cell loads them from
<results>/runs/<run_id>/. Everything here is common to the stages: seeds, timings, memory,
provenance and the result; the method decides what the stage trains and measures.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from harness import checks
from harness.alignment.methods import ALIGN_METHODS
from harness.alignment.methods.base import AlignContext
from harness.alignment.task import partitions
from harness.backends import BACKENDS, Backend
from harness.models import load_tokenizer, resolve_model


@BACKENDS.register_instance("alignment")
class AlignmentBackend(Backend):
    @property
    def methods(self):
        return ALIGN_METHODS

    def upstream(self, spec):
        method = ALIGN_METHODS.get(spec.method)
        return method.upstream(spec, method.Params.model_validate(spec.params))

    def run(self, spec, out_dir: Path, progress_path=None, extra_callbacks=None):
        from harness.train import finish_run, loss_curve_callbacks, save_trained_weights, start_run

        started, device = start_run(spec)
        method = ALIGN_METHODS.get(spec.method)
        params = method.Params.model_validate(spec.params)
        resolved = resolve_model(spec.model)
        tokenizer = load_tokenizer(resolved)
        tokenizer.padding_side = "left"  # generation (PPO rollouts) needs prompts left-padded
        parts = partitions(spec.dataset, trial=spec.trial is not None)
        curve: list = []
        ctx = AlignContext(
            spec, resolved, tokenizer, device, out_dir, parts,
            loss_curve_callbacks(curve, progress_path) + list(extra_callbacks or []), curve,
        )  # fmt: skip
        data_checks = {**parts.data_checks, **checks.tokenizer_checks(tokenizer)}
        load_s = time.perf_counter() - started
        result = method.run(ctx, params)
        status, reason = "ok", None
        bad = next((p for p in curve if not math.isfinite(p.get("loss", 0.0))), None)
        non_finite = [k for k, v in result.metrics.items() if not math.isfinite(v)]
        if bad or non_finite:
            status = "diverged"
            reason = (
                f"loss {bad['loss']} at step {bad['step']}" if bad else f"non-finite {non_finite}"
            )
            result.metrics = {}
        artifact_bytes = None
        trained = result.train_s > 0 and result.model is not None
        if status == "ok" and trained and spec.training.save_weights:
            artifact_bytes = save_trained_weights(result.model, out_dir / "weights")
        extra = {
            "train_tokens": result.train_tokens,
            "tokens_per_s": result.train_tokens / result.train_s if result.train_s else None,
            "artifact_bytes": artifact_bytes,
            "notes": {**result.notes, "upstream": spec.upstream or {}},
            "data_checks": {**data_checks, "issues": checks.issues(data_checks)},
        }
        timings = {
            "load_s": load_s,
            "train_s": result.train_s,
            "eval_s": result.notes.pop("eval_s", 0.0),
        }
        return finish_run(
            spec, result.model, resolved, parts, device, None,
            started=started, timings=timings, metrics=result.metrics, curve=curve, extra=extra,
            split=parts.held_out_split, status=status, reason=reason,
        )  # fmt: skip
