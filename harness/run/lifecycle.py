"""The one run lifecycle: a RunSpec in, a RunResult out, whatever the backend.

    start (clock, seeds and determinism, device, the budget's CUDA cap, a fresh peak window)
    -> backend.prepare -> backend.train (with the lifecycle's callbacks) -> backend.evaluate
    -> weights, memory, provenance.

The lifecycle owns everything around the backend's phases: which split is scored (validation for
tuning trials, test otherwise), the loss curve and progress, divergence (a non-finite loss or
metric) and pruning, the train/test overlap check, saving what was trained, the memory record
and provenance. Backends never repeat any of it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends import Evaluation, Prepared, RunContext, backend_for, checks
from harness.memory import measure
from harness.run import determinism, provenance, speed
from harness.store.result import Memory, ParamCounts, RunInfo, RunResult, Timings, TrainInfo, now
from harness.suite.spec import RunSpec, config_hash
from harness.suite.tasks import TASKS

WEIGHTS_DIR = "weights"


@dataclass
class Finished:
    """A run's result, and its model for in-process callers (tests)."""

    result: RunResult
    model: Any = None


def curve_callbacks(curve: list[dict[str, Any]], progress_path: Path | None) -> list:
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        """Keeps the loss curve, stops on a non-finite loss, and reports progress to the parent."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                point = {"step": state.global_step, "loss": float(logs["loss"])}
                for key in ("learning_rate", "grad_norm"):
                    if key in logs:
                        point[key] = float(logs[key])
                curve.append(point)
                if not math.isfinite(point["loss"]):
                    control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            if progress_path is not None:
                progress_path.write_text(
                    json.dumps({"step": state.global_step, "max_steps": state.max_steps})
                )

    return [Recorder()]


def start(spec: RunSpec) -> str:
    """Seeds and determinism, the device, the budget's CUDA memory cap, a fresh peak window."""
    import torch

    determinism.apply(spec.seed, spec.determinism_settings)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    measure.cap_cuda_memory(spec.budget.limit_bytes)  # a bigger GPU answers as the budget's would
    measure.reset_peak()
    return device


def execute(
    spec: RunSpec,
    out_dir: Path,
    progress_path: Path | None = None,
    extra_callbacks: list | None = None,
) -> Finished:
    """Run `spec` in this process (the worker calls it in a process of its own)."""
    started_at, started = now(), time.perf_counter()
    device = start(spec)
    backend = backend_for(spec)
    method = backend.methods.get(spec.method)
    run = RunContext(spec, out_dir, device, method, method.Params.model_validate(spec.params))

    prepared = backend.prepare(run)
    # scoring done while preparing (e.g. forgetting's "before") is evaluation time, not loading
    load_s = time.perf_counter() - started - prepared.eval_s

    reporter = None
    if spec.trial is not None and backend.reports_intermediate:
        from harness.run.trial import TrialReporter

        def score(model: Any) -> dict[str, float]:
            return backend.evaluate(run, prepared, model, intermediate=True).metrics

        reporter = TrialReporter(spec.trial, score)
    probe = measure.state_probe()
    # The timer last: a step's time then holds every other callback's work for that step.
    timer = speed.step_timer(spec.training.batch_size * spec.training.grad_accum)
    callbacks = [
        *curve_callbacks(run.curve, progress_path), probe, *([reporter] if reporter else []),
        *(extra_callbacks or []), timer,
    ]  # fmt: skip
    trained = backend.train(run, prepared, callbacks)

    status, reason = early_stop(run.curve, reporter, spec)
    evaluation, eval_s = Evaluation({}), prepared.eval_s
    if status == "ok":
        t0 = time.perf_counter()
        evaluation = backend.evaluate(run, prepared, trained.model)
        eval_s += time.perf_counter() - t0
        non_finite = [k for k, v in evaluation.metrics.items() if not math.isfinite(v)]
        if non_finite:
            status, reason = "diverged", f"{run.split} metrics are not finite: {non_finite}"
            evaluation = Evaluation({})

    artifact_bytes = None
    if status == "ok" and trained.steps > 0 and spec.training.save_weights:
        folder = trained.saved_to or save_trained_weights(trained.model, out_dir / WEIGHTS_DIR)
        artifact_bytes = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    info = TrainInfo(
        status=status,
        reason=reason,
        metrics={run.split: evaluation.metrics} if evaluation.metrics else None,
        curve=run.curve,
        timings=Timings(
            load_s=load_s,
            train_s=trained.train_s,
            eval_s=eval_s,
            total_s=time.perf_counter() - started,
        ),
        params=count_params(trained.model),
        memory=_memory(spec, device, prepared, probe),
        train_tokens=trained.tokens,
        tokens_per_s=_per_second(trained.tokens, trained.train_s),
        speed=timer.summary(),
        artifact_bytes=artifact_bytes,
        precision_effective=spec.training.precision if device == "cuda" else "fp32",
        split_sizes=prepared.split_sizes,
        notes={
            **prepared.notes,
            **trained.notes,
            **evaluation.notes,
            **({"upstream": spec.upstream} if spec.upstream else {}),
        },
        data_checks=_data_checks(spec, prepared),
        intermediate=reporter.intermediate if reporter else None,
        tables=evaluation.tables or None,
    )
    meta = provenance.collect(
        prepared.resolved.provenance, prepared.splits.fingerprint, spec.seed,
        config_hash(spec.resolved),
    )  # fmt: skip
    meta["determinism"] = determinism.record(spec.seed, spec.determinism_settings)
    result = RunResult(
        run_id=spec.run_id,
        run_info=RunInfo(
            spec=spec.model_dump(mode="json"), started_at=started_at, finished_at=now()
        ),
        train_info=info,
        meta_info=meta,
    )
    return Finished(result, trained.model)


def _per_second(amount: int | None, seconds: float) -> float | None:
    return amount / seconds if amount and seconds > 0 else None


def early_stop(curve: list[dict[str, Any]], reporter: Any, spec: RunSpec) -> tuple[str, str | None]:
    """`diverged` on a non-finite training loss, `pruned` when the trial's pruner stopped it."""
    bad = next((p for p in curve if not math.isfinite(p.get("loss", 0.0))), None)
    if bad is not None:
        return "diverged", f"training loss became {bad['loss']} at step {bad['step']}"
    if reporter is not None and reporter.pruned_at is not None:
        last = reporter.intermediate[-1]["value"]
        return "pruned", f"pruned at step {reporter.pruned_at} ({spec.trial.metric}={last:.4g})"
    return "ok", None


def _data_checks(spec: RunSpec, prepared: Prepared) -> dict[str, Any]:
    """The one train/validation/test overlap check, on the fields that keep records together
    (the task's input and group fields), beside the backend's own checks; `issues` flags a run."""
    task = TASKS.get(spec.dataset.task)
    found = {
        **checks.split_overlap(prepared.splits.as_dict(), task.split_key, task.group_fields),
        **prepared.data_checks,
    }
    return {**found, "issues": checks.issues(found)}


def _memory(spec: RunSpec, device: str, prepared: Prepared, probe: Any) -> Memory:
    return Memory(
        **measure.peak_memory(),
        weights_dtype=prepared.weights_dtype,
        measured_state=probe.measured,  # exact bytes of weights/grads/optimizer, any device
        estimate=_estimates(spec, device),
    )


def _estimates(spec: RunSpec, device: str) -> dict[str, Any]:
    """What the memory estimator predicted for this run: for the GPU (the budget question) and,
    on CPU, for the fp32 CPU run itself (whose weights/gradients/optimizer bytes are exact)."""
    from harness.plan.budget import estimate_or_reason

    out: dict[str, Any] = {}
    for target in ("cuda", device) if device != "cuda" else ("cuda",):
        try:
            found, why = estimate_or_reason(spec, target)
        except Exception as exc:  # noqa: BLE001 - an estimator bug must not fail the run
            found, why = None, f"{type(exc).__name__}: {exc}"
        out[target] = found.to_json() if found else {"error": why}
    return out


def count_params(model: Any) -> ParamCounts | None:
    if model is None:
        return None
    if hasattr(model, "get_nb_trainable_parameters"):  # PEFT counts 4-bit weights correctly
        trainable, total = model.get_nb_trainable_parameters()
    else:
        total = trainable = 0
        for p in model.parameters():
            n = p.numel()
            if getattr(p, "quant_state", None) is not None:  # bitsandbytes packs 2 weights a byte
                n *= 2
            total += n
            trainable += n if p.requires_grad else 0
    return ParamCounts(
        trainable_params=int(trainable),
        total_params=int(total),
        trainable_pct=100.0 * trainable / total if total else None,
    )


def save_trained_weights(model: Any, folder: Path) -> Path:
    """Save what was trained: an adapter, or the trainable tensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model.save_pretrained(folder)
    else:
        trained = {
            n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(trained, str(folder / "trained_params.safetensors"))
    return folder
