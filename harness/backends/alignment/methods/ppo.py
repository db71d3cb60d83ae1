"""`ppo`: RLHF with PPO against the proxy reward model (TRL 1.12 `trl.experimental.ppo`).

Pinned: TRL removed PPO in 1.13, so this is the only file that imports that module. The reward
is the proxy scoring the decoded rollout (reward.text_reward), so the proxy may have another
backbone than the policy. The value model is the policy's backbone with a fresh value head, trained
fully; the policy is LoRA by default, its reference the same model with the adapter off (full
FT: a frozen copy).
One update = `batch_size` prompts rolled out; `max_steps` updates = max_steps x batch_size episodes.

What Xu et al. (2024, "Is DPO superior to PPO for LLM alignment?") found decisive for PPO, as
TRL 1.12 offers it: advantage normalisation is always on (PPOTrainer whitens the advantages of
every batch; no switch), reward whitening is `whiten_rewards`, the batch is `training.batch_size`
(x `grad_accum`), and an EMA-updated reference is `ref_ema`: PPOConfig has no `sync_ref_model`
(DPO's and GRPO's configs do), but PPOTrainer calls `on_step_end` after each update and reads its
reference model in place, so TRL's own blend (SyncRefModelCallback.sync_target_model) runs there.
Like TRL's sync_ref_model it needs a separate reference (`peft: full`): with LoRA the reference is
the base under the policy's adapter, which cannot move without moving the policy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.backends import Trained
from harness.backends.alignment.memory_rl import cached_rl_estimate, ppo_estimate
from harness.backends.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    register,
    timed_train,
    train_prompts,
)
from harness.backends.alignment.reward import load_backbone, text_reward
from harness.backends.lora import policy_lora
from harness.backends.trainer_args import report_to
from harness.suite.config import optional

LOGGED = ("objective/rlhf_reward", "objective/scores", "objective/kl", "loss/policy_avg",
          "loss/value_avg", "policy/clipfrac_avg", "val/ratio")  # fmt: skip


class PpoParams(PolicyParams):
    kl_coef: float = Field(0.05, ge=0)
    cliprange: float = Field(0.2, gt=0)
    vf_coef: float = Field(0.1, ge=0)
    ppo_epochs: int = Field(4, ge=1)
    mini_batches: int = Field(1, ge=1)
    kl_estimator: Literal["k1", "k3"] = "k1"
    whiten_rewards: bool = False
    # EMA reference: every `ref_sync_steps` updates (default 1), ref <- (1 - a) ref + a policy.
    # None (the default) keeps the reference fixed at the start policy.
    ref_ema: float | None = optional(gt=0, le=1)
    ref_sync_steps: int | None = optional(ge=1)

    @model_validator(mode="after")
    def _ema_needs_its_own_reference(self) -> PpoParams:
        if self.ref_ema is not None and self.peft != "full":
            raise ValueError(
                "ref_ema (an EMA-updated reference) needs peft: full: with LoRA the reference is "
                "the base model under the policy's adapter, so it cannot be updated on its own"
            )
        if self.ref_sync_steps is not None and self.ref_ema is None:
            raise ValueError("ref_sync_steps is set without ref_ema: set ref_ema (e.g. 0.1)")
        return self


def _log_recorder(curve: list[dict[str, Any]]) -> Any:
    from transformers import TrainerCallback

    class PpoLog(TrainerCallback):
        """PPO logs objectives, not a `loss`: keep its main curves."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            point = {k.replace("/", "_"): float(logs[k]) for k in LOGGED if k in (logs or {})}
            if point:
                curve.append({"step": state.global_step, **point})

    return PpoLog()


def _ema_reference(policy: Any, reference: Any, alpha: float, every: int) -> Any:
    from transformers import TrainerCallback
    from trl.trainer.callbacks import SyncRefModelCallback

    class EmaReference(TrainerCallback):
        """After every `every` PPO updates: reference <- (1 - alpha) reference + alpha policy."""

        syncs = 0  # recorded with the run

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0:
                SyncRefModelCallback.sync_target_model(policy, reference, alpha)
                self.syncs += 1

    return EmaReference()


@register("ppo")
class Ppo(PolicyMethod):
    Params = PpoParams

    def estimate_memory(self, spec: Any, params: PpoParams, device: str) -> Any:

        return cached_rl_estimate(self, spec, params, device, ppo_estimate)

    def train_policy(self, ctx: AlignContext, params: PpoParams, proxy: Any) -> Trained:
        from datasets import Dataset
        from trl.experimental.ppo import PPOConfig, PPOTrainer

        t, tok = ctx.spec.training, ctx.tokenizer
        prompts = train_prompts(ctx, params)
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        on_gpu = ctx.device == "cuda"
        config = PPOConfig(
            output_dir=str(ctx.out_dir / "trainer"), per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.grad_accum,
            total_episodes=t.max_steps * t.batch_size * t.grad_accum,
            num_ppo_epochs=params.ppo_epochs, num_mini_batches=params.mini_batches,
            learning_rate=t.learning_rate, response_length=params.max_new_tokens,
            temperature=1.0, stop_token=None, missing_eos_penalty=None,
            kl_coef=params.kl_coef, cliprange=params.cliprange, vf_coef=params.vf_coef,
            kl_estimator=params.kl_estimator, whiten_rewards=params.whiten_rewards,
            local_rollout_forward_batch_size=t.batch_size, num_sample_generations=0,
            seed=ctx.spec.seed, data_seed=ctx.spec.seed, use_cpu=not on_gpu,
            fp16=on_gpu and t.precision == "fp16", bf16=on_gpu and t.precision == "bf16",
            gradient_checkpointing=False, logging_steps=1, save_strategy="no",
            report_to=report_to(ctx.spec), run_name=ctx.spec.label,
            disable_tqdm=True, dataset_num_proc=None,
        )  # fmt: skip
        value = load_backbone(ctx.resolved, tok)  # the policy's backbone, a fresh value head
        lora = policy_lora(params)
        # full fine-tuning: fp32 weights, and an fp32 reference (an EMA reference blends them)
        reference = None if lora else ctx.load_start(trains_weights=True)
        trainer = PPOTrainer(
            args=config, processing_class=tok, model=ctx.load_start(trains_weights=lora is None),
            ref_model=reference, reward_model=text_reward(proxy, tok),
            train_dataset=Dataset.from_dict({"input_ids": ids}), value_model=value,
            callbacks=[*ctx.callbacks, _log_recorder(ctx.curve)], peft_config=lora,
        )  # fmt: skip
        ema = None
        if params.ref_ema is not None:
            every = params.ref_sync_steps or 1
            ema = _ema_reference(trainer.policy_model, trainer.ref_model, params.ref_ema, every)
            trainer.add_callback(ema)
        train_s = timed_train(trainer)
        episodes = config.num_total_batches * config.batch_size
        mean_prompt = sum(len(i) for i in ids) / len(ids)
        policy = trainer.policy_model  # the wrapper also holds the value model
        return Trained(
            policy, steps=config.num_total_batches, train_s=train_s,
            # rollouts (prompt + response) are what PPO processes per episode
            tokens=int(episodes * (mean_prompt + params.max_new_tokens)),
            notes={"episodes": episodes, "prompts": len(prompts), "updates": config.num_total_batches,
                   "reference": "fixed: the start policy" if ema is None else
                   f"EMA: alpha {params.ref_ema} every {params.ref_sync_steps or 1} updates",
                   "reference_syncs": ema.syncs if ema else 0},
        )  # fmt: skip
