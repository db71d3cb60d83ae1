"""Peak GPU memory of PPO runs and of the reward-model stages (TRL 1.12), on the SFT estimator.

Both train sequence classifiers with one output (AutoModelForSequenceClassification,
num_labels=1, float32: reward.load_backbone), built here on the meta device and traced by
harness/memory/estimate.py like any model: weights, gradients, optimizer state and the
activations autograd saves inside the blocks.

Reward-model stage (RewardTrainer): the backbone with a LoRA adapter and a trained copy of its
score head (modules_to_save), chosen and rejected concatenated in one forward (2 x micro-batch
rows); the head's output is one number a token, so there is no vocabulary-sized term. Scoring
(held-out pair accuracy) runs without autograd and holds a batch of scores only.

PPO (trl.experimental.ppo.PPOTrainer) holds, for the whole run:
- the policy (LoRA over the start policy, or every weight in float32) and the value model (the
  policy's backbone with a fresh one-output head, every weight trained): both in the optimizer;
- the reference: LoRA, the base with the adapter off (no copy); full fine-tuning, a float32 copy;
- the proxy reward model (float32, adapter merged: reward.load_reward_model).
An update has two moments, the larger counted:
- rollout (no grad): generation of rollout_batch = batch_size x grad_accum x mini_batches prompts
  in chunks of batch_size with a KV cache, keeping every step's scores (float32 in transformers 5's
  generate) for the whole rollout batch, padded once (both copies alive at that moment); then, per
  chunk, the reference's full logits over prompt + response and a float32 log-softmax of them;
- training: one forward of policy and value model on a micro-batch of prompt + response (the
  policy's full-vocabulary logits, log-softmax and their gradients), while the rollout batch's
  generation scores are still referenced (PPOTrainer deletes them with the next rollout).
Sequences are bounded by `max_length` tokens (prompt + `max_new_tokens`; prompts are a review's
first `prompt_words` words, far shorter in the suites). After training the run is scored as every
policy is (alignment/memory.py: the start policy again, proxy and judge, scoring logits).

Not checked on CPU (the CPU run is fp32 and its allocator is not CUDA's): the KV cache's dtype
under half precision, the generation scores' and the reference logits' peaks, the activations of
the policy and value model's joint forward; what is checked byte for byte on CPU is the static
part (weights, gradients, optimizer state of policy + value model: tests/test_alignment.py).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.alignment import memory as policy_memory
from harness.backends.alignment.memory import (
    REFERENCE_DTYPE_BYTES,
    _independent_judge_note,
    _policy_model,
    policy_estimate,
    reward_model_bytes,
)
from harness.backends.alignment.reward import head_modules
from harness.backends.lora import DROPOUT_DEFAULT, LoraParams
from harness.backends.trainer_args import weights_dtype
from harness.memory.estimate import (
    Estimate,
    MetaModel,
    _train_peak,
    apply_peft,
    cached_estimate,
    estimate_model,
)
from harness.models import blocks
from harness.models.architectures import architecture_config

SCORES_BYTES = 4  # generate's per-step scores: float32 copies of the last logits (transformers 5)


def _classifier(config: Any) -> Any:
    """A one-output sequence classifier of `config` on the meta device, in float32."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(config)
    config.num_labels = 1
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = 0  # the run sets the tokenizer's; a classifier's batch needs one
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)


def _without_vocab_head(parts: dict[str, int], rows: int, length: int, grad_accum: int) -> None:
    """A classifier's head outputs one number a token (float32): replace the LM head's terms."""
    parts["logits_loss"] = rows * length * 4
    parts["eval_logits"] = 0
    static = parts["weights_frozen"] + parts["weights_trainable"] + parts["quant_constants"]
    parts["train_peak"] = _train_peak(parts, static, grad_accum)
    parts["eval_peak"] = static + parts["optimizer"]
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])


def reward_stage_estimate(spec: Any, params: Any, device: str = "cuda") -> Estimate:
    """A reward-model stage as RewardTrainer trains it (`params`: RewardParams)."""

    source, config = architecture_config(spec.model)
    model = _classifier(config)
    lora = LoraParams(r=params.r, alpha=2 * params.r, dropout=DROPOUT_DEFAULT["alignment"])
    model, _ = apply_peft(
        model, lora.peft_config("SEQ_CLS", modules_to_save=head_modules(model))
    )  # fmt: skip
    t = spec.training
    rows = t.model_copy(update={"batch_size": 2 * t.batch_size, "gradient_checkpointing": False})
    built = MetaModel(model, True, "float32", setup_key=f"reward_stage:{params.r}")
    base = estimate_model(built, rows, device=device, architecture=source)
    parts = dict(base.parts)
    _without_vocab_head(parts, rows.batch_size, t.max_length, t.grad_accum)
    notes = [
        *base.assumptions[:-1],
        f"reward model: a one-output sequence classifier in float32 with LoRA r={params.r} and a "
        "trained copy of its head; chosen + rejected in one forward (2 x micro-batch rows); "
        "scoring holds one batch of scores",
    ]
    return Estimate(parts, base.params, source, notes)


def _kv_cache_bytes(config: Any, batch: int, length: int, dtype_bytes: int) -> int:
    """Keys and values of every layer for `batch` sequences of `length` tokens."""
    layers = config.num_hidden_layers
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * layers * heads * head_dim * batch * length * dtype_bytes


def ppo_estimate(spec: Any, params: Any, device: str = "cuda") -> Estimate:
    """A PPO run (`params`: PpoParams) as TRL 1.12's PPOTrainer holds it, then scored."""

    source, config = architecture_config(spec.model)
    t = spec.training.model_copy(update={"gradient_checkpointing": False, "loss_type": "nll"})
    full = params.peft == "full"
    dtype = weights_dtype(full, device, t.precision)
    cuda = device == "cuda"
    act = 2 if cuda and t.precision != "fp32" else 4
    vocab, length, new = config.vocab_size, t.max_length, params.max_new_tokens

    policy = estimate_model(
        _policy_model(config, params, dtype, trains=True), t, device=device, architecture=source
    )
    value = estimate_model(
        MetaModel(_classifier(config), True, "float32", setup_key="ppo_value"), t, device=device
    )
    p, v = policy.parts, value.parts
    summed = ("weights_frozen", "weights_trainable", "quant_constants", "gradients", "optimizer",
              "activations", "step_temporaries", "head_gradients")  # fmt: skip
    parts = {k: p[k] + v[k] for k in summed}
    # the policy's full-vocabulary logits and log-softmax (estimate.py's `nll` head) + the value
    # model's one output a token
    parts["logits_loss"] = p["logits_loss"] + t.batch_size * length * 4
    parts["reference_weights"] = (
        policy.params["total_params"] * REFERENCE_DTYPE_BYTES if full else 0
    )
    proxy = reward_model_bytes(params.reward.model or spec.model)
    parts["proxy_weights"] = proxy
    rollout = t.batch_size * t.grad_accum * params.mini_batches
    # generate's scores for the rollout batch: kept through the update (and, while padded, twice)
    parts["generation_scores"] = rollout * new * vocab * SCORES_BYTES
    # accelerate runs the prepared models' forwards under autocast: keys, values and logits in
    # half precision on a fp16/bf16 GPU run (assumed, not checked on CPU), float32 on CPU
    parts["kv_cache"] = _kv_cache_bytes(config, t.batch_size, length, act)
    # per chunk: the reference's logits, and a float32 log-softmax of them
    parts["reference_logits"] = t.batch_size * length * vocab * (act + 4)
    held = sum(parts[k] for k in ("weights_frozen", "weights_trainable", "quant_constants",
                                  "optimizer", "reference_weights"))  # fmt: skip
    held += proxy
    gen = parts["generation_scores"]  # while padded, twice; then beside the KV cache or logits
    rollout_peak = gen + max(gen, parts["kv_cache"], parts["reference_logits"])
    static = held - parts["optimizer"]
    train = _train_peak(parts, static, t.grad_accum) + parts["generation_scores"]
    parts["train_peak"] = max(held + rollout_peak, train)

    # Scoring after training: as every policy is scored (alignment/memory.py), with the value
    # model, the reference and the proxy still referenced by the trainer.
    scored = policy_estimate(spec, params, None, device)
    s = scored.parts
    parts["judge_weights"] = s["reward_models"] - proxy
    parts["start_weights"] = s["start_weights"]
    parts["scoring_logits"] = s["scoring_logits"]
    parts["eval_peak"] = (held + parts["judge_weights"] + parts["start_weights"]
                          + parts["scoring_logits"])  # fmt: skip
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])
    counts = {
        "total_params": policy.params["total_params"] + value.params["total_params"],
        "trainable_params": policy.params["trainable_params"] + value.params["trainable_params"],
        "quantized_params": 0,
        "tokens_per_micro_batch": policy.params["tokens_per_micro_batch"],
    }
    notes = [
        *policy.assumptions,
        f"PPO: policy {'full fine-tuning' if full else f'LoRA r={params.r}'} in {dtype} + a "
        "float32 value model (every weight trained), one joint forward a micro-batch; reference "
        + ("a float32 copy" if full else "the base with the adapter off (no copy)")
        + f"; proxy reward model in float32; rollout batch {rollout} prompts x {new} new tokens "
        f"(float32 generation scores held through the update), KV cache per chunk of "
        f"{t.batch_size}; prompt + response bounded by max_length {length}",
        "not checked on CPU: generation scores, KV cache and reference-logit peaks, the joint "
        "forward's activations (weights, gradients and optimizer state are, byte for byte)",
        _independent_judge_note(params),
    ]
    return Estimate(parts, counts, source, notes)


def cached_rl_estimate(
    method: Any, spec: Any, params: Any, device: str, compute: Callable[..., Estimate]
) -> Estimate:
    """`compute` (the method's own: ppo_estimate, reward_stage_estimate, memory_online's), kept
    on disk per configuration and keyed on the code it comes from (`compute`'s module too)."""

    key = ["alignment-rl", spec.model.model_dump(mode="json"), spec.method, spec.params,
           spec.training.model_dump(mode="json"), device]  # fmt: skip
    classes = [c for c in type(method).__mro__ if c is not object]
    code = {Path(__file__), Path(policy_memory.__file__), Path(blocks.__file__),
            Path(inspect.getfile(compute)), *(Path(inspect.getfile(c)) for c in classes)}  # fmt: skip
    return cached_estimate(key, sorted(code), lambda: compute(spec, params, device))
