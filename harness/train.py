"""The shared training entry: one RunSpec -> trained, evaluated, measured result.

It calls the method's hook to get a model (and an optional PEFT config), trains with TRL's
SFTTrainer, and scores with the task. There are no method flags in here.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import budget, checks, determinism, provenance
from harness.architectures import architecture_config
from harness.data import load_splits
from harness.methods import METHODS, MethodContext
from harness.methods.base import load_dtype
from harness.models import load_tokenizer, resolve_model
from harness.suite import RunSpec, config_hash
from harness.tasks import TASKS


@dataclass
class RunOutput:
    """What a run produced; `model` is kept for in-process callers (tests)."""

    metrics: dict[str, float]  # on `split`: test for runs, validation for tuning trials
    curve: list[dict[str, Any]]
    timings: dict[str, float]
    params: dict[str, Any]
    memory: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    split: str = "test"
    # A run can end early without crashing: `diverged` (non-finite loss) or `pruned` (tuning).
    # Its curve, timings and memory are kept; it has no metrics.
    status: str = "ok"
    reason: str | None = None


def loss_curve_callbacks(curve: list[dict[str, Any]], progress_path: Path | None):
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


def trainer_kwargs(spec: RunSpec, out_dir: Path, device: str) -> dict[str, Any]:
    """TrainingArguments fields every backend sets the same way from the suite's training block."""
    t = spec.training
    on_gpu = device == "cuda"
    return {
        "output_dir": str(out_dir / "trainer"),
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.learning_rate,
        "weight_decay": t.weight_decay,
        "warmup_steps": t.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        "lr_scheduler_type": t.lr_scheduler,
        "optim": t.optimizer,
        "logging_steps": t.logging_steps,
        "seed": spec.seed,
        "data_seed": spec.seed,
        # Mixed precision only where the hardware has it; CPU runs in fp32 (recorded).
        "fp16": on_gpu and t.precision == "fp16",
        "bf16": on_gpu and t.precision == "bf16",
        "use_cpu": not on_gpu,
        "gradient_checkpointing": t.gradient_checkpointing,
        "logging_nan_inf_filter": False,  # the default hides a NaN loss; divergence must be seen
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
    }


def _sft_config(spec: RunSpec, out_dir: Path, device: str):
    from trl import SFTConfig

    # TRL's loss: None keeps TRL's default (chunked_nll); the memory estimator models both.
    optional = {"loss_type": spec.training.loss_type} if spec.training.loss_type else {}
    return SFTConfig(
        **trainer_kwargs(spec, out_dir, device),
        **optional,
        max_length=spec.training.max_length,
        include_num_input_tokens_seen="non_padding",
        dataset_num_proc=None,
    )


def keep_trained_params_fp32(model: Any, precision: str) -> int:
    """TRL 1.12's SFTTrainer casts the adapters of a quantized model to bf16 (the QLoRA paper's
    choice). A T4 has no bf16 and CPU runs are fp32: unless the run itself is bf16, trained
    parameters go back to fp32 (what fp16 mixed precision needs for its master weights) before
    the optimizer is built. Returns how many tensors were cast."""
    import torch

    if precision == "bf16":
        return 0
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype == torch.bfloat16:
            param.data = param.data.float()
            cast += 1
    return cast


def count_params(model: Any) -> dict[str, Any]:
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
    return {
        "trainable_params": int(trainable),
        "total_params": int(total),
        "trainable_pct": 100.0 * trainable / total if total else None,
    }


def save_trained_weights(model: Any, folder: Path) -> int:
    """Save what was trained (an adapter, or the trainable tensors) and return its size on disk."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model.save_pretrained(folder)
    else:
        trained = {
            n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(trained, str(folder / "trained_params.safetensors"))
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def start_run(spec: RunSpec) -> tuple[float, str]:
    """The start of every backend's run: the clock, seeds and determinism, the device, the
    budget's CUDA memory cap, and a fresh peak-memory window."""
    import torch

    started = time.perf_counter()
    determinism.apply(spec.seed, spec.determinism_settings)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    budget.cap_cuda_memory(spec.budget.limit_bytes)  # a bigger GPU answers as the budget's would
    budget.reset_peak()
    return started, device


def run_training(
    spec: RunSpec,
    out_dir: Path,
    progress_path: Path | None = None,
    extra_callbacks: list | None = None,
) -> RunOutput:
    from datasets import Dataset

    started, device = start_run(spec)

    task = TASKS.get(spec.dataset.task)
    method = METHODS.get(spec.method)
    params = method.Params.model_validate(spec.params)
    resolved = resolve_model(spec.model)
    tokenizer = load_tokenizer(resolved)
    splits = load_splits(spec.dataset)
    data_checks = {
        **checks.split_overlap(splits.as_dict(), task.split_key),
        **checks.tokenizer_checks(tokenizer),
    }
    context = MethodContext(
        resolved,
        tokenizer,
        device,
        weights_dtype=load_dtype(method, device, spec.training.precision),
        random_config=architecture_config(spec.model)[1] if spec.model.systems_only else None,
    )
    setup = method.setup(context, params)
    load_s = time.perf_counter() - started

    curve: list[dict[str, Any]] = []
    model = setup.model
    train_s, train_tokens = 0.0, 0
    max_length, eval_batch = spec.training.max_length, spec.training.eval_batch_size
    # A tuning trial is scored on validation only; the test split is for final runs.
    split = "validation" if spec.trial else "test"
    eval_records = splits.validation if spec.trial else splits.test
    reporter = None
    if spec.trial is not None:
        from harness.tune_report import TrialReporter

        reporter = TrialReporter(
            spec.trial, lambda m: task.evaluate(m, tokenizer, eval_records, max_length, eval_batch)
        )
    probe = budget.state_probe()
    if method.trains and spec.training.max_steps > 0:
        from trl import SFTTrainer

        examples = [task.to_example(r, tokenizer, max_length) for r in splits.train]
        trainer = SFTTrainer(
            model=model,
            args=_sft_config(spec, out_dir, device),
            train_dataset=Dataset.from_list(examples),
            processing_class=tokenizer,
            peft_config=setup.peft_config,
            callbacks=loss_curve_callbacks(curve, progress_path)
            + [probe]
            + ([reporter] if reporter else [])
            + list(extra_callbacks or []),
        )
        if len(trainer.train_dataset) == 0:
            raise ValueError("no training example survived tokenization: raise training.max_length")
        recast = keep_trained_params_fp32(trainer.model, spec.training.precision)
        if recast:
            setup.notes["trained_params_recast_to_fp32"] = recast
        shortened = [
            e != task.to_example(r, tokenizer, checks.UNLIMITED)
            for e, r in zip(examples, splits.train, strict=True)
        ]
        data_checks.update(
            checks.example_checks(
                tokenizer, examples, shortened, trainer.train_dataset, trainer.data_collator,
                max_length,
            )
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        train_tokens = int(trainer.state.num_input_tokens_seen)
        model = trainer.model
    elif method.trains:
        model.requires_grad_(False)

    status, reason = early_stop(curve, reporter, spec)
    metrics: dict[str, float] = {}
    t0 = time.perf_counter()
    if status == "ok":
        metrics = task.evaluate(model, tokenizer, eval_records, max_length, eval_batch)
        non_finite = [k for k, v in metrics.items() if not math.isfinite(v)]
        if non_finite:
            status, reason = "diverged", f"{split} metrics are not finite: {non_finite}"
            metrics = {}
    eval_s = time.perf_counter() - t0

    artifact_bytes = None
    if (
        status == "ok"
        and method.trains
        and spec.training.max_steps > 0
        and spec.training.save_weights
    ):
        artifact_bytes = save_trained_weights(model, out_dir / "weights")
    memory = {
        "weights_dtype": context.weights_dtype,
        "measured_state": probe.measured,  # exact bytes of weights/grads/optimizer, any device
        "estimate": _estimates(spec, device),
    }
    extra = {
        "train_tokens": train_tokens,
        "tokens_per_s": train_tokens / train_s if train_s > 0 else None,
        "artifact_bytes": artifact_bytes,
        "notes": setup.notes,
        "data_checks": {**data_checks, "issues": checks.issues(data_checks)},
    }
    return finish_run(
        spec, model, resolved, splits, device, reporter,
        started=started, timings={"load_s": load_s, "train_s": train_s, "eval_s": eval_s},
        metrics=metrics, curve=curve, extra=extra, split=split, status=status, reason=reason,
        memory=memory,
    )  # fmt: skip


def finish_run(
    spec: RunSpec,
    model: Any,
    resolved: Any,
    splits: Any,
    device: str,
    reporter: Any,
    *,
    started: float,
    timings: dict[str, float],
    metrics: dict[str, float],
    curve: list[dict[str, Any]],
    extra: dict[str, Any],
    split: str,
    status: str,
    reason: str | None,
    memory: dict[str, Any] | None = None,
) -> RunOutput:
    """The measured tail every backend shares: provenance, parameter counts, peak memory, total
    time, split sizes, effective precision and the trial's intermediate reports."""
    extra = {
        "precision_effective": spec.training.precision if device == "cuda" else "fp32",
        "split_sizes": splits.split_sizes,
        **extra,
    }
    if reporter is not None:
        extra["intermediate"] = reporter.intermediate
    meta = provenance.collect(
        resolved.provenance, splits.fingerprint, spec.seed, config_hash(spec.resolved)
    )
    meta["determinism"] = determinism.record(spec.seed, spec.determinism_settings)
    return RunOutput(
        metrics=metrics,
        curve=curve,
        timings={**timings, "total_s": time.perf_counter() - started},
        params=count_params(model) if model is not None else {},
        memory={**budget.peak_memory(), **(memory or {})},
        extra=extra,
        meta=meta,
        model=model,
        split=split,
        status=status,
        reason=reason,
    )


def _estimates(spec: RunSpec, device: str) -> dict[str, Any]:
    """What the memory estimator predicted for this run: for the GPU (the budget question) and,
    on CPU, for the fp32 CPU run itself (whose weights/gradients/optimizer bytes are exact)."""
    from harness.budget_plan import estimate_or_reason

    out: dict[str, Any] = {}
    for target in ("cuda", device) if device != "cuda" else ("cuda",):
        try:
            found, why = estimate_or_reason(spec, target)
        except Exception as exc:  # noqa: BLE001 - an estimator bug must not fail the run
            found, why = None, f"{type(exc).__name__}: {exc}"
        out[target] = found.to_json() if found else {"error": why}
    return out


def early_stop(curve: list[dict[str, Any]], reporter: Any, spec: RunSpec) -> tuple[str, str | None]:
    bad = next((p for p in curve if not math.isfinite(p["loss"])), None)
    if bad is not None:
        return "diverged", f"training loss became {bad['loss']} at step {bad['step']}"
    if reporter is not None and reporter.pruned_at is not None:
        last = reporter.intermediate[-1]["value"]
        return "pruned", f"pruned at step {reporter.pruned_at} ({spec.trial.metric}={last:.4g})"
    return "ok", None
