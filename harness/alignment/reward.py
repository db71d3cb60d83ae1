"""Reward models (proxy and judge): sequence classifiers with one output, saved as a LoRA adapter.

They share the policy's tokenizer: PPO feeds the policy's token ids straight into the reward model.
Texts are scored as plain text without an appended EOS, both in training (pre-tokenized, so TRL
adds none) and when scoring generations, so the two see the same kind of input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.models import ResolvedModel
from harness.results import read_result

ADAPTER_DIR = "weights"


def load_backbone(resolved: ResolvedModel, tokenizer: Any) -> Any:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        resolved.location, num_labels=1, **resolved.from_pretrained_kwargs()
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def upstream_dir(run_dir: Path, role: str, run_id: str) -> Path:
    """The folder of a finished upstream run; a clear error when it did not end `ok`."""
    folder = run_dir.parent / run_id
    result = read_result(folder)
    status = result["train_info"]["status"] if result else "not run"
    if status != "ok":
        raise RuntimeError(
            f"upstream {role} run {run_id} is {status}: run the suite (it runs stages first), "
            f"or look at {folder}/result.json"
        )
    return folder


def load_reward_model(resolved: ResolvedModel, tokenizer: Any, folder: Path) -> Any:
    """A trained reward model: the backbone with its adapter (and score head) merged in, frozen."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_backbone(resolved, tokenizer), folder / ADAPTER_DIR)
    model = model.merge_and_unload()
    model.eval().requires_grad_(False)
    return model


def record_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "result.json").read_text())


def encode(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    return [
        tokenizer(t, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        for t in texts
    ]


def score_ids(model: Any, pad_id: int, sequences: list[list[int]], batch_size: int) -> list[float]:
    """Reward of each token sequence (right-padded; the model reads its last real token)."""
    import torch

    scores: list[float] = []
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, seq in enumerate(batch):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            out = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            scores += out.float().tolist()
    return scores


def pair_accuracy(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]], max_length: int, batch_size: int
) -> float:
    chosen = score_ids(
        model,
        tokenizer.pad_token_id,
        encode(tokenizer, [c for c, _ in pairs], max_length),
        batch_size,
    )
    rejected = score_ids(
        model,
        tokenizer.pad_token_id,
        encode(tokenizer, [r for _, r in pairs], max_length),
        batch_size,
    )
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)
