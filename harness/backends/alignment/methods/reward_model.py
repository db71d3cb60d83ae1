"""`reward_model`: a Bradley-Terry reward model trained with TRL's RewardTrainer.

Pairs are the task's (chosen, rejected) texts from the stage's own partition (positive_continuation:
a positive and a negative review; preference_pairs: prompt + chosen, prompt + rejected): `role: reward` (the proxy PPO optimises and DPO/KTO label with) or `role: judge` (the
separate scorer of every policy, other records and another seed). The backbone (the stage's
`model`, default the policy's) gets a LoRA adapter and a trained head; reward models score decoded
text, so any sequence classifier fits (on CPU all-MiniLM-L6-v2 reaches ~0.9 held-out accuracy in
a minute; SmolLM2-135M needs ~5 s a step). Scored by `reward_accuracy` on held-out review pairs.
"""

from __future__ import annotations

from typing import Any

from harness.backends import Evaluation, Trained
from harness.backends.alignment.memory_rl import cached_rl_estimate, reward_stage_estimate
from harness.backends.alignment.methods.base import (
    AlignContext,
    AlignMethod,
    register,
    timed_train,
)
from harness.backends.alignment.reward import (
    ADAPTER_DIR,
    Scorer,
    encode,
    head_modules,
    load_backbone,
)
from harness.backends.alignment.stages import RewardParams
from harness.backends.lora import DROPOUT_DEFAULT, LoraParams
from harness.suite.spec import config_hash


@register("reward_model")
class RewardModel(AlignMethod):
    Params = RewardParams

    def estimate_memory(self, spec: Any, params: RewardParams, device: str) -> Any:

        return cached_rl_estimate(self, spec, params, device, reward_stage_estimate)

    def train(self, ctx: AlignContext, params: RewardParams) -> Trained:
        from datasets import Dataset
        from trl import RewardConfig, RewardTrainer

        t, tok = ctx.spec.training, ctx.tokenizer
        pairs = ctx.task.reward_pairs(getattr(ctx.parts, params.role))
        if not pairs:
            raise ValueError(f"the {params.role} partition has no (chosen, rejected) pair")
        # Pre-tokenized (no EOS appended), the form in which generations are scored later.
        chosen = encode(tok, [c for c, _ in pairs], t.max_length)
        rejected = encode(tok, [r for _, r in pairs], t.max_length)
        data = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
        config = RewardConfig(
            **ctx.trainer_args(), max_length=t.max_length, dataset_num_proc=None,
            include_num_input_tokens_seen="non_padding",
        )  # fmt: skip
        backbone = load_backbone(ctx.resolved, tok)
        lora = LoraParams(r=params.r, alpha=2 * params.r, dropout=DROPOUT_DEFAULT["alignment"])
        trainer = RewardTrainer(
            model=backbone, args=config, train_dataset=data, processing_class=tok,
            peft_config=lora.peft_config("SEQ_CLS", modules_to_save=head_modules(backbone)),
            callbacks=ctx.callbacks,
        )  # fmt: skip
        train_s = timed_train(trainer)
        model = trainer.model
        folder = ctx.out_dir / ADAPTER_DIR
        model.save_pretrained(folder)  # always, whatever save_weights says: later stages load it
        model.eval()
        return Trained(
            model, steps=trainer.state.global_step, train_s=train_s,
            tokens=int(trainer.state.num_input_tokens_seen), saved_to=folder,
            notes={
                "role": params.role,
                "train_pairs": len(pairs),
                "train_records_sha256": config_hash(sorted(t for pair in pairs for t in pair)),
            },
        )  # fmt: skip

    def evaluate(self, ctx: AlignContext, params: RewardParams, model: Any) -> Evaluation:
        t = ctx.spec.training
        pairs = ctx.task.reward_pairs(getattr(ctx.parts, params.role))
        held_out = ctx.task.reward_pairs(ctx.parts.held_out)
        scorer = Scorer(model, ctx.tokenizer, t.max_length, t.eval_batch_size)
        return Evaluation(
            {"reward_accuracy": scorer.pair_accuracy(held_out)},
            notes={
                "held_out_pairs": len(held_out),
                "train_accuracy_first64": scorer.pair_accuracy(pairs[:64]),
            },
        )
