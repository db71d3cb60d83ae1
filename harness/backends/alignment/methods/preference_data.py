"""Where the offline methods' (DPO, KTO, ORPO, SimPO) preference pairs come from, and the
training they share. The task names its pair source (task.py: AlignmentTask.pair_source):

- `start_samples` (positive_continuation): for each policy prompt the starting policy samples two
  continuations (seeds s and s+1); the proxy reward model (the same one PPO optimises) ranks them:
  chosen = higher reward. So DPO/KTO see the same prompts, the same starting policy and the same
  preference signal as PPO; only the use of it differs (offline pairs vs online RL). Ties are
  dropped.
- `data` (preference_pairs): the policy partition's (prompt, chosen, rejected) rows as given
  (`train_prompts` caps them); the proxy is not asked, only its agreement with them recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from harness.backends import Trained
from harness.backends.alignment.generation import encode_prompts, sample, texts
from harness.backends.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    timed_train,
    train_prompts,
)
from harness.backends.lora import policy_lora
from harness.suite.registry import Registry
from harness.suite.spec import config_hash

# name -> (ctx, params, proxy) -> (rows of prompt/chosen/rejected, notes for the run)
PairSource = Callable[[AlignContext, PolicyParams, Any], tuple[list[dict], dict]]
PAIR_SOURCES: Registry[PairSource] = Registry("preference pair source")


@PAIR_SOURCES.register("start_samples")
def ranked_pairs(ctx: AlignContext, params: PolicyParams, proxy: Any) -> tuple[list[dict], dict]:
    tok = ctx.tokenizer
    prompts = train_prompts(ctx, params)
    prompt_ids = encode_prompts(tok, prompts)
    start = ctx.load_start()
    batch, seed = ctx.spec.training.eval_batch_size, ctx.spec.seed
    a = sample(start, tok, prompt_ids, params.max_new_tokens, seed, batch)
    b = sample(start, tok, prompt_ids, params.max_new_tokens, seed + 1, batch)
    ra, rb = proxy.score(texts(tok, a)), proxy.score(texts(tok, b))
    rows, margins = [], []
    for i, prompt in enumerate(prompts):
        if ra[i] == rb[i] or not a.response_ids[i] or not b.response_ids[i]:
            continue
        hi, lo = (a, b) if ra[i] > rb[i] else (b, a)
        rows.append({
            "prompt": prompt,
            "chosen": tok.decode(hi.response_ids[i]),
            "rejected": tok.decode(lo.response_ids[i]),
        })  # fmt: skip
        margins.append(abs(ra[i] - rb[i]))
    notes = {
        "pairs": len(rows),
        "prompts": len(prompts),
        "mean_reward_margin": sum(margins) / len(margins) if margins else None,
        "pair_source": "2 samples of the start policy per prompt, ranked by the proxy reward model",
    }
    return rows, notes


@PAIR_SOURCES.register("data")
def given_pairs(ctx: AlignContext, params: PolicyParams, proxy: Any) -> tuple[list[dict], dict]:
    records = ctx.parts.policy[: params.train_prompts]  # never empty (task.partitions)
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in records]  # fmt: skip
    notes = {
        "pairs": len(rows),
        "prompts": len({r["prompt"] for r in rows}),
        # how often the proxy ranks the data's pairs as the data does (its training accuracy)
        "proxy_agreement": proxy.pair_accuracy(ctx.task.reward_pairs(records)),
        "pair_source": "the dataset's (prompt, chosen, rejected) rows, policy partition",
        "pairs_sha256": config_hash(rows),  # which rows it trained on
    }
    return rows, notes


class OfflinePreferenceMethod(PolicyMethod):
    """A TRL preference trainer run once over the task's pairs (PAIR_SOURCES); a subclass says
    which trainer, with which settings, on which examples."""

    # Whether the trainer's batches carry `input_ids` (transformers counts tokens from them).
    # ORPO's and CPO's batches hold chosen_/rejected_ ids only: their runs record no token count
    # rather than a wrong 0.
    counts_tokens: ClassVar[bool] = True

    def trainer(self, params: Any) -> tuple[Any, Any, dict[str, Any]]:
        """(config class, trainer class, method-specific config fields)."""
        raise NotImplementedError

    def examples(self, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
        return rows

    def train_policy(self, ctx: AlignContext, params: Any, proxy: Any) -> Trained:
        from datasets import Dataset

        rows, notes = PAIR_SOURCES.get(ctx.task.pair_source)(ctx, params, proxy)
        examples = self.examples(rows)
        if not examples:
            raise ValueError("no preference data: every sampled pair tied under the proxy")
        config_cls, trainer_cls, fields = self.trainer(params)
        counting = "non_padding" if self.counts_tokens else "no"
        trainer = trainer_cls(
            model=ctx.load_start(trains_weights=params.peft == "full"),
            args=config_cls(
                **ctx.trainer_args(), max_length=ctx.spec.training.max_length,
                dataset_num_proc=None, include_num_input_tokens_seen=counting, **fields,
            ),
            train_dataset=Dataset.from_list(examples), processing_class=ctx.tokenizer,
            peft_config=policy_lora(params), callbacks=ctx.callbacks,
        )  # fmt: skip
        train_s = timed_train(trainer)
        return Trained(
            trainer.model, steps=trainer.state.global_step, train_s=train_s,
            tokens=int(trainer.state.num_input_tokens_seen) if self.counts_tokens else None,
            notes=notes,
        )  # fmt: skip
