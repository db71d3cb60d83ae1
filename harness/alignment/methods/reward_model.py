"""`reward_model`: a Bradley-Terry reward model trained with TRL's RewardTrainer.

Pairs are (chosen = a positive review, rejected = a negative review) from the stage's own
partition: `role: reward` (the proxy PPO optimises and DPO/KTO label with) or `role: judge` (the
separate scorer of every policy, other records and another seed). The backbone (the stage's
`model`, default the policy's) gets a LoRA adapter and a trained head; reward models score decoded
text, so any sequence classifier fits (on CPU all-MiniLM-L6-v2 reaches ~0.9 held-out accuracy in
a minute; SmolLM2-135M needs ~5 s a step). Scored by `reward_accuracy` on held-out review pairs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.alignment.methods.base import AlignContext, AlignMethod, StageResult, register
from harness.alignment.reward import ADAPTER_DIR, Scorer, encode, head_modules, load_backbone
from harness.alignment.task import preference_pairs
from harness.config import StrictModel
from harness.suite import config_hash


class RewardParams(StrictModel):
    role: Literal["reward", "judge"] = "reward"
    r: int = Field(8, ge=1)


def stage_spec(spec: Any, role: str, stage: Any) -> Any:
    """The reward-model RunSpec a policy spec starts from: derived only from the stage config,
    model, dataset, budget and seed, so every policy cell of a seed shares it."""
    from harness.suite import RunSpec, TrainingConfig

    return RunSpec(
        suite=spec.suite,
        suite_version=spec.suite_version,
        method_key="reward_model" if role == "reward" else "judge",
        method="reward_model",
        params=RewardParams(role=role, r=stage.r).model_dump(mode="json"),
        model_key=spec.model_key if stage.model is None else _model_key(stage.model),
        model=stage.model or spec.model,
        dataset_key=spec.dataset_key,
        dataset=spec.dataset.model_copy(update={"metric": "reward_accuracy"}),
        training=TrainingConfig(
            max_steps=stage.max_steps,
            batch_size=stage.batch_size,
            learning_rate=stage.learning_rate,
            max_length=stage.max_length,
            eval_batch_size=spec.training.eval_batch_size,
            timeout_s=stage.timeout_s,
            precision=spec.training.precision,
        ),  # fmt: skip
        seed=spec.seed + stage.seed_offset,
        budget=spec.budget,
        determinism=spec.determinism,
    )


def _model_key(model: Any) -> str:
    return (model.asset or model.hub or Path(model.path).name).split("/")[-1]


@register("reward_model")
class RewardModel(AlignMethod):
    Params = RewardParams

    def run(self, ctx: AlignContext, params: RewardParams) -> StageResult:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import RewardConfig, RewardTrainer

        t = ctx.spec.training
        tok = ctx.tokenizer
        pairs = preference_pairs(getattr(ctx.parts, params.role))
        if not pairs:
            raise ValueError(f"the {params.role} partition has no positive/negative review pair")
        # Pre-tokenized (no EOS appended), the form in which generations are scored later.
        chosen = encode(tok, [c for c, _ in pairs], t.max_length)
        rejected = encode(tok, [r for _, r in pairs], t.max_length)
        data = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
        on_gpu = ctx.device == "cuda"
        config = RewardConfig(
            output_dir=str(ctx.out_dir / "trainer"), max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
            learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
            warmup_steps=t.warmup_ratio, logging_steps=t.logging_steps, seed=ctx.spec.seed,
            data_seed=ctx.spec.seed, max_length=t.max_length, use_cpu=not on_gpu,
            fp16=on_gpu and t.precision == "fp16", bf16=on_gpu and t.precision == "bf16",
            gradient_checkpointing=False, save_strategy="no", report_to=[], disable_tqdm=True,
            logging_nan_inf_filter=False, dataset_num_proc=None,
            include_num_input_tokens_seen="non_padding",
        )  # fmt: skip
        backbone = load_backbone(ctx.resolved, tok)
        lora = LoraConfig(
            r=params.r, lora_alpha=2 * params.r, lora_dropout=0.0, target_modules="all-linear",
            task_type="SEQ_CLS", modules_to_save=head_modules(backbone),
        )  # fmt: skip
        trainer = RewardTrainer(
            model=backbone, args=config, train_dataset=data,
            processing_class=tok, peft_config=lora, callbacks=ctx.callbacks,
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        model = trainer.model
        model.save_pretrained(ctx.out_dir / ADAPTER_DIR)  # always: later stages load it
        model.eval()
        held_out = preference_pairs(ctx.parts.held_out)
        scorer = Scorer(model, tok, t.max_length, t.eval_batch_size)
        accuracy, train_acc = scorer.pair_accuracy(held_out), scorer.pair_accuracy(pairs[:64])
        return StageResult(
            model=model,
            metrics={"reward_accuracy": accuracy},
            train_s=train_s,
            train_tokens=int(trainer.state.num_input_tokens_seen),
            notes={
                "role": params.role,
                "train_pairs": len(pairs),
                "held_out_pairs": len(held_out),
                "train_accuracy_first64": train_acc,
                "train_records_sha256": config_hash(sorted(t for pair in pairs for t in pair)),
            },
        )
