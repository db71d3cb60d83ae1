"""Reward models (proxy and judge): sequence classifiers with one output, saved as a LoRA adapter.

A reward model scores decoded text with its own tokenizer, so its backbone need not be the
policy's (PPO reaches it through `TextReward`). Causal backbones read texts without added special
tokens (no EOS is appended in training either), encoders with theirs ([CLS] ... [SEP]).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.padding import pad_right
from harness.models import ResolvedModel, load_tokenizer, resolve_model

ADAPTER_DIR = "weights"
HEADS = ("score", "classifier")  # the new output layer of decoder / encoder classifiers


def load_backbone(resolved: ResolvedModel, tokenizer: Any) -> Any:
    """A one-output sequence classifier on the model, in float32 whatever the checkpoint's
    dtype (transformers 5 would load that: often bf16, which a T4 lacks; the value model and
    the reward model's head train in it)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        resolved.location, num_labels=1, dtype=torch.float32, **resolved.from_pretrained_kwargs()
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def head_modules(model: Any) -> list[str]:
    return [name for name in HEADS if hasattr(model, name)]


def load_reward_model(resolved: ResolvedModel, tokenizer: Any, folder: Path) -> Any:
    """A trained reward model: the backbone with its adapter (and head) merged in, frozen."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_backbone(resolved, tokenizer), folder / ADAPTER_DIR)
    model = model.merge_and_unload()
    model.eval().requires_grad_(False)
    return model


def encode(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    special = tokenizer.cls_token is not None  # encoders pool [CLS]; decoders read raw text
    return [
        tokenizer(t, add_special_tokens=special, truncation=True, max_length=max_length)[
            "input_ids"
        ]
        for t in texts
    ]


def score_ids(model: Any, pad_id: int, sequences: list[list[int]], batch_size: int) -> list[float]:
    """Reward of each token sequence (right-padded; a decoder reads its last real token)."""
    import torch

    scores: list[float] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            ids, mask = pad_right(sequences[start : start + batch_size], pad_id)
            device = next(model.parameters()).device
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, 0]
            scores += out.float().tolist()
    return scores


@dataclass
class Scorer:
    """A reward model with its own tokenizer, scoring plain texts."""

    model: Any
    tokenizer: Any
    max_length: int
    batch_size: int

    def score(self, texts: list[str]) -> list[float]:
        ids = encode(self.tokenizer, texts, self.max_length)
        return score_ids(self.model, self.tokenizer.pad_token_id, ids, self.batch_size)

    def pair_accuracy(self, pairs: list[tuple[str, str]]) -> float:
        chosen = self.score([c for c, _ in pairs])
        rejected = self.score([r for _, r in pairs])
        return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


def load_scorer(
    model_spec: Any, folder: Path, max_length: int, batch_size: int, device: str
) -> Scorer:
    """The reward model of the finished stage in `folder` (trained on `model_spec`)."""

    resolved = resolve_model(model_spec)
    tokenizer = load_tokenizer(resolved)
    model = load_reward_model(resolved, tokenizer, folder).to(device)
    return Scorer(model, tokenizer, max_length, batch_size)


def text_reward(scorer: Scorer, policy_tokenizer: Any) -> Any:
    """`scorer` in the shape TRL's PPO calls a reward model: it runs
    getattr(model, model.base_model_prefix)(input_ids=..., attention_mask=...) and reads
    model.score(output.hidden_states[-1]) at the last response token. Here the backbone decodes
    the policy's token ids and scores the text; every position carries the sequence's reward."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class Decode(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reward = scorer.model  # a submodule, so .to(device) moves it

        def forward(self, input_ids, attention_mask, **kwargs):
            rows = [
                ids[mask.bool()].tolist()
                for ids, mask in zip(input_ids, attention_mask, strict=True)
            ]
            text = [policy_tokenizer.decode(r, skip_special_tokens=True) for r in rows]
            reward = torch.tensor(scorer.score(text), device=input_ids.device)
            hidden = reward[:, None, None].expand(*input_ids.shape, 1)
            return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,))

    class TextReward(torch.nn.Module):
        base_model_prefix = "decode"

        def __init__(self) -> None:
            super().__init__()
            self.decode = Decode()
            self.score = torch.nn.Identity()

    return TextReward().eval().requires_grad_(False)
