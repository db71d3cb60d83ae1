"""The phases of an SFT run: the method loads the model (and may hand over a PEFT config), TRL's
SFTTrainer trains it on the task's prompt/completion pairs, the task scores it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.backends import BACKENDS, Backend, Evaluation, Prepared, RunContext, Trained, checks
from harness.backends.data import load_splits
from harness.backends.sft import forgetting
from harness.backends.sft.methods import METHODS, MethodContext, MethodSetup
from harness.backends.sft.methods.base import load_dtype
from harness.backends.trainer_args import trainer_kwargs
from harness.models import load_tokenizer, resolve_model
from harness.suite.registry import Registry
from harness.suite.tasks import TASKS, Record


@dataclass
class SftPrepared(Prepared):
    task: Any = None
    tokenizer: Any = None
    setup: MethodSetup | None = None
    eval_records: list[Record] | None = None
    general_loss_before: float | None = None  # forgetting: the set-up model on general text


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


HEAD_CHUNK_GRAIN = 32  # rows of TRL's chunked head: a multiple of this


@contextlib.contextmanager
def head_chunk(tokens: int) -> Iterator[None]:
    """TRL's default loss (`chunked_nll`) runs the LM head on the trained tokens only, padded up
    to chunks of 256 rows. Completion-only SFT trains a few tokens an example (a label and EOS),
    so a batch of 8 trains ~24 tokens and 256 rows are 10x the head work it needs (about a tenth
    of a CPU step for SmolLM2). While the trainer is built (it reads the size then), the chunk is
    the batch's trained tokens rounded up to HEAD_CHUNK_GRAIN, never more than TRL's 256; the
    loss is the same sum, chunked differently. The memory estimate keeps 256 (an upper bound)."""
    from trl.trainer import sft_trainer

    default = sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE
    grain = HEAD_CHUNK_GRAIN
    sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE = min(default, -(-max(tokens, 1) // grain) * grain)
    try:
        yield
    finally:
        sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE = default


def trained_tokens_per_batch(examples: list[dict[str, str]], tokenizer: Any, batch: int) -> int:
    """The most completion tokens (with EOS) a micro-batch of `batch` examples can train."""
    eos = tokenizer.eos_token or ""
    lengths = sorted(
        (len(tokenizer(e["completion"] + eos, add_special_tokens=False)["input_ids"]) + 1
         for e in examples),
        reverse=True,
    )  # fmt: skip
    return sum(lengths[:batch])


def check_optimizer(name: str) -> None:
    """GaLore's optimizers need a package the pinned environment does not hold."""
    import importlib.util

    if name.startswith("galore") and importlib.util.find_spec("galore_torch") is None:
        raise ValueError(
            f"training.optimizer {name!r} needs the galore-torch package (PyPI galore-torch 1.0), "
            "which is not installed here; ftbench also does not pass GaLore's "
            "optim_target_modules yet. Use adamw_torch, adamw_bnb_8bit or paged_adamw_8bit."
        )


def _sft_config(run: RunContext):
    from trl import SFTConfig

    spec = run.spec
    # TRL's loss: None keeps TRL's default (chunked_nll); the memory estimator models both.
    t = spec.training
    optional = {"loss_type": t.loss_type} if t.loss_type else {}
    # LLaMA-Factory's knobs, passed on only when set: NEFTune's embedding noise (transformers)
    # and TRL's sequence packing (best-fit decreasing, padding-free).
    if t.neftune_noise_alpha is not None:
        optional["neftune_noise_alpha"] = t.neftune_noise_alpha
    if t.packing:
        optional["packing"] = True
    return SFTConfig(
        **trainer_kwargs(spec, run.out_dir, run.device),
        **optional,
        max_length=spec.training.max_length,
        include_num_input_tokens_seen="non_padding",
        dataset_num_proc=None,
        # Tensor cores want sequence lengths in multiples of 8; a CPU only pays for the padding.
        pad_to_multiple_of=8 if run.device == "cuda" else None,
    )


@BACKENDS.register_instance("sft")
class SftBackend(Backend):
    """Causal LMs trained with TRL's SFTTrainer and scored by their task."""

    @property
    def methods(self) -> Registry[Any]:
        return METHODS

    def estimate_memory(self, spec, device="cuda"):
        from harness.backends.sft import memory
        from harness.memory.estimate import cached_estimate
        from harness.models.architectures import architecture_config

        source, config = architecture_config(spec.model)
        method = METHODS.get(spec.method)
        params = method.Params.model_validate(spec.params)
        key = [config.to_dict(), spec.method, spec.params, spec.training.model_dump(), device]
        return cached_estimate(
            key,
            memory.code_files(method),
            lambda: memory.estimate(
                config, method, params, spec.training, device=device, architecture=source
            ),
        )

    @staticmethod
    def _forgetting(run: RunContext, prepared: SftPrepared, model: Any) -> dict[str, float]:
        """The general-text loss before and after training (see forgetting.py)."""
        lm = run.method.language_model(model)
        if prepared.general_loss_before is None:
            with lm.disable_adapter():
                prepared.general_loss_before = forgetting.general_loss(lm, prepared.tokenizer)
        before = after = prepared.general_loss_before
        if run.method.trains:
            after = forgetting.general_loss(lm, prepared.tokenizer)
        return forgetting.metrics(before, after)

    def report(self, db_path, suite):
        return forgetting.report_section(db_path, suite)

    def upstream(self, spec):
        from harness.backends.sft import tapt

        check_optimizer(spec.training.optimizer)
        method = METHODS.get(spec.method)
        method.check(spec, method.Params.model_validate(spec.params))
        return tapt.upstream(spec)  # a TAPT stage when the method entry asks for one

    def prepare(self, run: RunContext) -> SftPrepared:
        from harness.backends.sft import tapt
        from harness.models.architectures import architecture_config

        spec = run.spec
        resolved = resolve_model(spec.model)
        tokenizer = load_tokenizer(resolved)
        splits = load_splits(spec.dataset)
        weights, start_notes = tapt.start_weights(run, resolved)  # the stage's model, if any
        context = MethodContext(
            weights,
            tokenizer,
            run.device,
            weights_dtype=load_dtype(run.method, run.device, spec.training.precision),
            random_config=architecture_config(spec.model)[1] if spec.model.systems_only else None,
        )
        setup = run.method.setup(context, run.params)
        t0 = time.perf_counter()
        # A quantized base stays frozen under its adapter: its "before" is taken after training
        # with the adapter off, so nothing runs on it before training (bitsandbytes repacks 4-bit
        # weights for its CPU kernels on the first inference pass).
        quantized = getattr(setup.model, "hf_quantizer", None) is not None
        before = None if quantized else forgetting.general_loss(setup.model, tokenizer)
        return SftPrepared(
            model=setup.model,
            resolved=resolved,
            splits=splits,
            data_checks=checks.tokenizer_checks(tokenizer),
            notes={
                **setup.notes,
                **start_notes,
                "general_text_sha256": forgetting.sample_sha256(),
            },
            weights_dtype=context.weights_dtype,
            eval_s=time.perf_counter() - t0,
            general_loss_before=before,
            task=TASKS.get(spec.dataset.task),
            tokenizer=tokenizer,
            setup=setup,
            eval_records=splits.as_dict()[run.split],
        )

    def train(self, run: RunContext, prepared: SftPrepared, callbacks: list) -> Trained:
        from datasets import Dataset
        from trl import SFTTrainer

        spec, task, tokenizer = run.spec, prepared.task, prepared.tokenizer
        model, max_length = prepared.model, spec.training.max_length
        if not run.method.trains:
            return Trained(model)
        taken_over = run.method.train(run, prepared, callbacks)
        if taken_over is not None:
            return taken_over
        if spec.training.max_steps == 0:
            model.requires_grad_(False)
            return Trained(model)
        examples = [task.to_example(r, tokenizer, max_length) for r in prepared.splits.train]
        trained = trained_tokens_per_batch(examples, tokenizer, spec.training.batch_size)
        with head_chunk(trained):
            trainer = SFTTrainer(
                model=model,
                args=_sft_config(run),
                train_dataset=Dataset.from_list(examples),
                processing_class=tokenizer,
                peft_config=prepared.setup.peft_config,
                callbacks=[*run.method.callbacks(run), *callbacks],  # the step timer stays last
            )
        if len(trainer.train_dataset) == 0:
            raise ValueError("no training example survived tokenization: raise training.max_length")
        notes = {}
        recast = keep_trained_params_fp32(trainer.model, spec.training.precision)
        if recast:
            notes["trained_params_recast_to_fp32"] = recast
        optimizer = run.method.optimizer(trainer.model, run)
        if optimizer is not None:  # the Trainer uses a given optimizer instead of its own
            trainer.optimizer = optimizer
        shortened = [
            e != task.to_example(r, tokenizer, checks.UNLIMITED)
            for e, r in zip(examples, prepared.splits.train, strict=True)
        ]
        prepared.data_checks.update(
            checks.example_checks(
                tokenizer, examples, shortened, trainer.train_dataset, trainer.data_collator,
                max_length,
            )
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer.train()
        return Trained(
            trainer.model,
            steps=trainer.state.global_step,
            train_s=time.perf_counter() - t0,
            tokens=int(trainer.state.num_input_tokens_seen),
            notes=notes,
        )

    def evaluate(self, run, prepared: SftPrepared, model, *, intermediate=False) -> Evaluation:
        evaluation = run.method.evaluate(run, prepared, model)
        if evaluation is None:
            t = run.spec.training
            metrics = prepared.task.evaluate(
                model, prepared.tokenizer, prepared.eval_records, t.max_length, t.eval_batch_size
            )
            evaluation = Evaluation(metrics)
        if not intermediate:  # a tuning trial's report needs only the headline metric
            evaluation.metrics.update(self._forgetting(run, prepared, model))
        return evaluation
