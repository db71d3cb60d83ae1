"""`dpo`: Direct Preference Optimization (TRL DPOTrainer) on proxy-ranked on-policy pairs.

`loss_type` is any of TRL's DPO losses (sigmoid, ipo, hinge, robust, ...); see preference_data.py
for how the pairs are built. The reference is the starting policy (LoRA: adapter off).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from harness.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    StageResult,
    policy_lora,
    register,
)
from harness.alignment.methods.preference_data import ranked_pairs


class DpoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)


def offline_config(config_cls: Any, ctx: AlignContext, **kwargs: Any) -> Any:
    """The TrainingArguments DPO and KTO share (CPU-safe: no bf16, no checkpointing)."""
    t = ctx.spec.training
    on_gpu = ctx.device == "cuda"
    return config_cls(
        output_dir=str(ctx.out_dir / "trainer"), max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay, optim=t.optimizer,
        logging_steps=t.logging_steps, seed=ctx.spec.seed, data_seed=ctx.spec.seed,
        max_length=t.max_length, use_cpu=not on_gpu,
        fp16=on_gpu and t.precision == "fp16", bf16=on_gpu and t.precision == "bf16",
        gradient_checkpointing=False, save_strategy="no", report_to=[], disable_tqdm=True,
        logging_nan_inf_filter=False, dataset_num_proc=None,
        include_num_input_tokens_seen="non_padding", **kwargs,
    )  # fmt: skip


def train_offline(ctx: AlignContext, trainer: Any, notes: dict[str, Any]) -> StageResult:
    t0 = time.perf_counter()
    trainer.train()
    return StageResult(
        model=trainer.model, metrics={}, train_s=time.perf_counter() - t0,
        train_tokens=int(trainer.state.num_input_tokens_seen), notes=notes,
    )  # fmt: skip


@register("dpo")
class Dpo(PolicyMethod):
    Params = DpoParams

    def train_policy(self, ctx: AlignContext, params: DpoParams, proxy: Any) -> StageResult:
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        rows, notes = ranked_pairs(ctx, params, proxy)
        if not rows:
            raise ValueError("no preference pair: every sampled pair tied under the proxy")
        config = offline_config(
            DPOConfig, ctx, beta=params.beta, loss_type=[params.loss_type],
            label_smoothing=params.label_smoothing,
        )  # fmt: skip
        trainer = DPOTrainer(
            model=ctx.load_start(), args=config, train_dataset=Dataset.from_list(rows),
            processing_class=ctx.tokenizer, peft_config=policy_lora(params),
            callbacks=ctx.callbacks,
        )  # fmt: skip
        return train_offline(ctx, trainer, notes)
