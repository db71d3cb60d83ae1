"""Peak GPU memory of an alignment policy run, built on the SFT estimator (harness/memory/).

The policy is set up on the meta device as the run sets it up (LoRA with the policy's rank and
no dropout, or every weight trained), in the dtype `load_start` asks for
(harness/backends/trainer_args.weights_dtype: float32 where the weights train or on CPU, the
run's half precision for a frozen base under LoRA and for a copy that only samples); reward
models are loaded in float32 (reward.load_backbone). One SFT step of that model is estimated with
the rows of the forward that trains (DPO, ORPO, SimPO: chosen and rejected concatenated, twice
the micro-batch; KTO: the micro-batch) and TRL's preference trainers' plain full-vocabulary
loss (they have no chunked head). Added to it, each a named part:

- reference_weights: full fine-tuning loads a frozen copy with TRL's create_model_from_path,
  whose default dtype is float32; a PEFT policy's reference is its base with the adapter off
  (no copy); ORPO and SimPO have none.
- nograd_logits: the logits the reference's (and KTO's KL) no-grad forwards hold while the
  policy's graph is alive: DPO 2 x micro-batch rows, KTO completion + KL rows.
- chosen_nll: ORPO's (and DPO's `sft` loss', CPO's cpo_alpha > 0) cross-entropy over the
  chosen half, another copy of its logits with upcast, saved log-softmax and gradient.
- reward_models: the proxy reward model, loaded before training and kept; the judge too when
  the policy is scored.
- start_weights, scoring_logits: scoring after training samples the policy and a fresh copy
  of the start policy, scores both with proxy and judge, and takes log-probabilities of the
  samples (logits in the weights' dtype, a float32 copy, its log-softmax) over eval_batch_size
  sequences of at most max_length tokens.

Not modelled: the sampling of preference pairs before training (the start policy and the
proxy, less than scoring holds), the no-grad forwards' own activations (one layer at a time),
the reward models' scoring activations (a classifier's forward without autograd).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.lora import policy_lora
from harness.backends.sft import memory as sft_memory
from harness.backends.sft.memory import MetaContext
from harness.backends.trainer_args import weights_dtype
from harness.memory.estimate import (
    Estimate,
    MetaModel,
    apply_peft,
    cached_estimate,
    estimate_model,
    unique_params,
)
from harness.models import blocks
from harness.models.architectures import architecture_config

# Per-logit bytes of a loss over full logits beyond the logits themselves (SFT's plain `nll`:
# fp32 upcast, saved log-softmax, its gradient; harness/memory/estimate.py `_head_bytes`).
LOSS_BYTES_PER_LOGIT = 3 * 4
# Scoring's log-probabilities: a float32 copy of the logits and its log-softmax.
SCORING_BYTES_PER_LOGIT = 2 * 4
REFERENCE_DTYPE_BYTES = 4  # trl.trainer.utils.create_model_from_path: dtype float32 by default


@dataclass(frozen=True)
class PreferenceShape:
    """What a TRL preference trainer holds beyond an SFT step of the policy (TRL 1.12)."""

    trained_rows: int  # sequences per example in the forward that trains (2: chosen + rejected)
    reference: bool  # a reference model's forward (False: reference-free, ORPO and SimPO)
    nograd_rows: int  # sequences per example whose no-grad logits are held at once
    chosen_nll: bool = False  # an extra cross-entropy over the chosen sequences' logits


def _policy_model(config: Any, params: Any, dtype: str, trains: bool) -> MetaModel:
    """The policy as load_start + the trainer's peft_config set it up, on the meta device."""
    model = MetaContext(config, dtype).load_model()
    lora = policy_lora(params) if trains else None
    if lora is not None:
        model, _ = apply_peft(model, lora)
    else:
        model.requires_grad_(trains)
    key = f"policy:{params.peft}:{params.r}:{params.alpha}"
    return MetaModel(model, trains, dtype, setup_key=key)


def reward_model_bytes(model_spec: Any) -> int:
    """Weights of a trained reward model as load_reward_model holds them: the backbone with its
    one-output head, adapter merged, in float32 (reward.load_backbone)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    _, config = architecture_config(model_spec)
    config = copy.deepcopy(config)
    config.num_labels = 1
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    return sum(p.numel() * p.element_size() for p in unique_params(model))


def policy_estimate(
    spec: Any, params: Any, shape: PreferenceShape | None, device: str = "cuda"
) -> Estimate:
    """A policy run's estimate (`shape` None: nothing trains, the run only scores)."""

    source, config = architecture_config(spec.model)
    # AlignContext.trainer_args turns checkpointing off whatever the spec says (a budget's
    # `adjust` may set it): estimated as the trainer runs.
    t = spec.training.model_copy(update={"gradient_checkpointing": False})
    trains_weights = shape is not None and params.peft == "full"
    dtype = weights_dtype(trains_weights, device, t.precision)
    built = _policy_model(config, params, dtype, trains=shape is not None)
    sampling = weights_dtype(False, device, t.precision)  # a copy that only samples
    start_copy = _dtype_bytes(sampling) * sum(  # load_start again for scoring: no adapter
        p.numel() for n, p in built.model.named_parameters() if "lora_" not in n
    )
    cuda = device == "cuda"
    act = 2 if cuda and t.precision != "fp32" else 4  # logits under autocast, as SFT's head
    vocab, length = config.vocab_size, t.max_length
    if shape is None:
        base = estimate_model(built, t, device=device, architecture=source)
    else:
        rows = t.model_copy(update={"batch_size": shape.trained_rows * t.batch_size,
                                    "loss_type": "nll"})  # fmt: skip
        base = estimate_model(built, rows, device=device, architecture=source)
    parts = dict(base.parts)
    policy_weights = parts["weights_frozen"] + parts["weights_trainable"]
    proxy = reward_model_bytes(params.reward.model or spec.model)
    judge = reward_model_bytes(params.judge.model or spec.model)
    full = shape is not None and params.peft == "full"
    train = {
        "reference_weights": (
            base.params["total_params"] * REFERENCE_DTYPE_BYTES if full and shape.reference else 0
        ),
        "nograd_logits": (
            shape.nograd_rows * t.batch_size * length * vocab * act if shape and shape.reference
            else 0
        ),
        "chosen_nll": (
            t.batch_size * length * vocab * (act + LOSS_BYTES_PER_LOGIT)
            if shape and shape.chosen_nll else 0
        ),
    }  # fmt: skip
    parts.update(train)
    parts["train_peak"] = parts["train_peak"] + sum(train.values()) + proxy if shape else 0
    # Scoring: no autocast, logits in the weights' dtype. The optimizer state is counted as
    # still held (the SFT estimator's convention: the trainer may not be collected yet).
    scoring = t.eval_batch_size * length * vocab * (_dtype_bytes(dtype) + SCORING_BYTES_PER_LOGIT)
    parts.update({
        "reward_models": proxy + judge,
        "start_weights": start_copy,
        "scoring_logits": scoring,
    })  # fmt: skip
    parts["eval_logits"] = 0  # replaced by scoring_logits (policy sampling, not SFT's eval)
    held = policy_weights + parts["quant_constants"] + parts["optimizer"]
    parts["eval_peak"] = held + parts["start_weights"] + proxy + judge + scoring
    parts["total"] = max(parts["train_peak"], parts["eval_peak"])
    notes = [
        *base.assumptions,
        f"policy {'full fine-tuning' if params.peft == 'full' else f'LoRA r={params.r}'} in the "
        f"{dtype} (a sampling copy in {sampling}); " + _shape_note(shape, full),
        "reward models: proxy during training, proxy + judge while scoring; scoring holds a "
        "second copy of the start policy; eval sequences bounded by max_length",
        _independent_judge_note(params),
    ]
    return Estimate(parts, base.params, source, notes)


def _independent_judge_note(params: Any) -> str:
    judge = params.independent
    if judge.kind == "lexicon":
        return "independent judge: a lexicon (VADER) on the CPU, no GPU memory"
    return (
        f"independent judge: the classifier {judge.model.hub or judge.model.path} while scoring "
        "is not counted (its architecture is not catalogued; a DistilBERT holds ~0.27 GB fp32)"
    )


def _dtype_bytes(dtype: str) -> int:
    import torch

    return getattr(torch, dtype).itemsize


def _shape_note(shape: PreferenceShape | None, full: bool) -> str:
    if shape is None:
        return "nothing trains: weights and scoring only"
    reference = (
        "no reference model" if not shape.reference
        else "reference: a float32 frozen copy" if full
        else "reference: the base with the adapter off (no copy)"
    )  # fmt: skip
    return (
        f"{shape.trained_rows} x micro-batch rows in the trained forward with full-vocabulary "
        f"logits (no chunked head); {reference}"
        + (f"; {shape.nograd_rows} x micro-batch rows of no-grad logits" if shape.reference else "")
        + ("; an extra cross-entropy over the chosen rows" if shape.chosen_nll else "")
    )


def cached_policy_estimate(
    method: Any, spec: Any, params: Any, shape: PreferenceShape | None, device: str
) -> Estimate:
    """policy_estimate, kept on disk per configuration (harness/memory/estimate.py)."""

    key = ["alignment", spec.model.model_dump(mode="json"), spec.method, spec.params,
           spec.training.model_dump(mode="json"), device]  # fmt: skip
    classes = [c for c in type(method).__mro__ if c is not object]
    code = {Path(__file__), Path(sft_memory.__file__), Path(blocks.__file__),
            *(Path(inspect.getfile(c)) for c in classes)}  # fmt: skip
    return cached_estimate(key, sorted(code), lambda: policy_estimate(spec, params, shape, device))
