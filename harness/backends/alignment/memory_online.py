"""Peak GPU memory of the online policy methods (grpo, rloo, online_dpo; TRL 1.12), on the SFT
estimator and the preference trainers' estimate (alignment/memory.py).

All three sample from the policy during training and score the samples with the proxy reward
model (float32, adapter merged: reward.load_reward_model), held for the whole run. Their
reference is the start policy: with LoRA the base with the adapter off (no copy); full
fine-tuning, a float32 copy (GRPO/RLOO load one with create_model_from_path, float32 by default,
and only when beta > 0; online DPO deep-copies the float32 policy).

GRPO and RLOO (GRPOTrainer, RLOOTrainer) sample a generation batch of batch_size x grad_accum
completions (batch_size x grad_accum / num_generations prompts) in one `generate` call, keep its
completion ids and per-token log-probabilities (tiny), and train on micro-batches of batch_size
completions. Two moments, the larger counted:
- sampling (no grad): the KV cache of the whole generation batch and one step's last-token
  logits (with a float32 copy); then, in chunks of batch_size, no-grad log-probabilities of the
  completions under the reference (beta > 0) or the policy (RLOO always; GRPO when
  num_iterations > 1): logits over the completion tokens only (logits_to_keep), divided by the
  temperature (a copy) and a float32 log-softmax;
- training: an SFT step of the policy on batch_size sequences of prompt + completion, whose
  head keeps logits over the completion tokens only (max_new_tokens + 1 a row), plus the
  temperature-divided copy, as SFT's `nll` head otherwise (upcast, log-softmax, its gradient).

Online DPO (trl.experimental.online_dpo) samples two completions per prompt (2 x batch_size
sequences, one `generate` call), ranks each pair with the proxy, and takes a DPO step on them:
the preference trainers' estimate with DPO's shape (2 x micro-batch rows in the trained forward
with full-sequence logits, 2 x micro-batch rows of the reference's no-grad logits), plus the
float32 log-softmax of those reference logits, and a sampling moment (the KV cache of 2 x
batch_size sequences and one step's logits).

Sequences are bounded by `max_length` (prompt + max_new_tokens; prompts are a review's first
`prompt_words` words, far shorter in the suites). After training the run is scored as every
policy is (alignment/memory.py).

Not checked on CPU (the CPU run is fp32 and its allocator is not CUDA's): the KV cache's dtype
under half precision and its peak, the sampling and log-probability logits' peaks (TRL's
selective_log_softmax loops over rows in half precision), the activations of the trained forward
(traced as the SFT estimator traces them); what is checked byte for byte on CPU is the static
part (weights, gradients, optimizer state of the policy: tests/test_online_methods.py).
"""

from __future__ import annotations

from typing import Any

from harness.backends.alignment.memory import (
    REFERENCE_DTYPE_BYTES,
    PreferenceShape,
    _independent_judge_note,
    _policy_model,
    policy_estimate,
    reward_model_bytes,
)
from harness.backends.alignment.memory_rl import _kv_cache_bytes
from harness.backends.trainer_args import weights_dtype
from harness.memory.estimate import Estimate, _train_peak, estimate_model
from harness.models.architectures import architecture_config

FLOAT32 = 4
LOSS_BYTES_PER_LOGIT = 3 * FLOAT32  # SFT's `nll` head: fp32 upcast, saved log-softmax, gradient


def _act_bytes(device: str, precision: str) -> int:
    """Logits and the KV cache: half precision under a fp16/bf16 GPU run (accelerate's autocast,
    assumed), float32 on CPU."""
    return 2 if device == "cuda" and precision != "fp32" else FLOAT32


def grpo_estimate(spec: Any, params: Any, device: str = "cuda") -> Estimate:
    """A GRPO run (`params`: GrpoParams): the policy's own no-grad log-probabilities only when a
    generation batch serves several updates (num_iterations > 1)."""
    return _group_estimate(spec, params, device, old_logps=params.num_iterations > 1)


def rloo_estimate(spec: Any, params: Any, device: str = "cuda") -> Estimate:
    """An RLOO run (`params`: RlooParams): RLOOTrainer always computes the policy's no-grad
    log-probabilities of the generation batch (the ratio's denominator)."""
    return _group_estimate(spec, params, device, old_logps=True)


def _group_estimate(spec: Any, params: Any, device: str, old_logps: bool) -> Estimate:
    """A GRPO or RLOO run as TRL 1.12's trainer holds it."""

    source, config = architecture_config(spec.model)
    t = spec.training.model_copy(update={"gradient_checkpointing": False, "loss_type": "nll"})
    full = params.peft == "full"
    dtype = weights_dtype(full, device, t.precision)
    act = _act_bytes(device, t.precision)
    vocab, hidden, length = config.vocab_size, config.hidden_size, t.max_length
    keep = params.max_new_tokens + 1  # logits_to_keep + 1: the completion's positions only

    policy = estimate_model(
        _policy_model(config, params, dtype, trains=True), t, device=device, architecture=source
    )
    parts = dict(policy.parts)
    # the head: the hidden states of every position, logits over the completion only (and a
    # copy divided by the temperature), upcast, log-softmax and gradient as SFT's `nll` head
    parts["logits_loss"] = (t.batch_size * length * hidden * act
                            + t.batch_size * keep * vocab * (2 * act + LOSS_BYTES_PER_LOGIT))  # fmt: skip
    reference = params.beta > 0
    parts["reference_weights"] = (
        policy.params["total_params"] * REFERENCE_DTYPE_BYTES if full and reference else 0
    )
    proxy = reward_model_bytes(params.reward.model or spec.model)
    parts["proxy_weights"] = proxy
    rows = t.batch_size * t.grad_accum  # the generation batch: whole groups of completions
    parts["kv_cache"] = _kv_cache_bytes(config, rows, length, act)
    parts["sampling_logits"] = rows * vocab * (act + FLOAT32)  # one step's, and a float32 copy
    # no-grad log-probabilities, a chunk of batch_size completions at a time
    parts["nograd_logits"] = (
        t.batch_size * keep * vocab * (2 * act + FLOAT32) if reference or old_logps else 0
    )
    held = sum(parts[k] for k in ("weights_frozen", "weights_trainable", "quant_constants",
                                  "optimizer", "reference_weights"))  # fmt: skip
    held += proxy
    sampling = held + max(parts["kv_cache"] + parts["sampling_logits"], parts["nograd_logits"])
    static = held - parts["optimizer"]
    parts["train_peak"] = max(sampling, _train_peak(parts, static, t.grad_accum))
    _scored(parts, spec, params, device, held, proxy)
    counts = {**policy.params}
    notes = [
        *policy.assumptions,
        f"{spec.method}: policy {'full fine-tuning' if full else f'LoRA r={params.r}'} in {dtype}; "
        f"reference {_reference_note(full, reference)}; proxy reward model in float32; "
        f"generation batch {rows} completions ({rows // params.num_generations} prompts x "
        f"{params.num_generations}) x {params.max_new_tokens} new tokens sampled at once (KV "
        f"cache); trained micro-batch {t.batch_size} completions with logits over the completion "
        f"tokens only; no-grad log-probabilities "
        + ("in chunks of the micro-batch" if reference or old_logps else "not computed")
        + f"; prompt + completion bounded by max_length {length}",
        _not_checked_note(),
        _independent_judge_note(params),
    ]
    return Estimate(parts, counts, source, notes)


def online_dpo_estimate(spec: Any, params: Any, device: str = "cuda") -> Estimate:
    """An online DPO run (`params`: OnlineDpoParams) as TRL 1.12's OnlineDPOTrainer holds it."""

    source, config = architecture_config(spec.model)
    t = spec.training
    dpo = PreferenceShape(trained_rows=2, reference=True, nograd_rows=2)
    base = policy_estimate(spec, params, dpo, device)
    parts = dict(base.parts)
    act = _act_bytes(device, t.precision)
    rows = 2 * t.batch_size  # two completions per prompt
    # the reference's log-probabilities: a float32 log-softmax of its no-grad logits
    parts["reference_logsoftmax"] = rows * params.max_new_tokens * config.vocab_size * FLOAT32
    parts["kv_cache"] = _kv_cache_bytes(config, rows, t.max_length, act)
    parts["sampling_logits"] = rows * config.vocab_size * (act + FLOAT32)
    proxy = reward_model_bytes(params.reward.model or spec.model)
    held = sum(parts[k] for k in ("weights_frozen", "weights_trainable", "quant_constants",
                                  "optimizer", "reference_weights"))  # fmt: skip
    held += proxy
    sampling = held + parts["kv_cache"] + parts["sampling_logits"]
    parts["train_peak"] = max(parts["train_peak"] + parts["reference_logsoftmax"], sampling)
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])
    notes = [
        *base.assumptions,
        f"online DPO: {rows} completions ({t.batch_size} prompts x 2) x {params.max_new_tokens} "
        "new tokens sampled at once (KV cache), ranked by the proxy; a DPO step on them (the "
        "reference's log-probabilities in float32 beside its logits)",
        _not_checked_note(),
    ]
    return Estimate(parts, base.params, source, notes)


def _scored(parts: dict[str, int], spec: Any, params: Any, device: str, held: int,
            proxy: int) -> None:  # fmt: skip
    """Scoring after training, as every policy is scored (alignment/memory.py), with the
    reference and the proxy still referenced by the trainer."""
    s = policy_estimate(spec, params, None, device).parts
    parts["judge_weights"] = s["reward_models"] - proxy
    parts["start_weights"] = s["start_weights"]
    parts["scoring_logits"] = s["scoring_logits"]
    parts["eval_logits"] = 0  # replaced by scoring_logits
    parts["eval_peak"] = (held + parts["judge_weights"] + parts["start_weights"]
                          + parts["scoring_logits"])  # fmt: skip
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])


def _reference_note(full: bool, reference: bool) -> str:
    if not reference:
        return "none (beta 0)"
    return "a float32 copy" if full else "the base with the adapter off (no copy)"


def _not_checked_note() -> str:
    return (
        "not checked on CPU: the KV cache (its dtype under half precision), the sampling and "
        "log-probability logits' peaks, the trained forward's activations (weights, gradients "
        "and optimizer state are, byte for byte)"
    )
