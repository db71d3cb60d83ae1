"""Forgetting, as PEFT's method comparison reports it: the LM's loss on general text that no task
trains on, before and after fine-tuning.

The text: paragraphs of Python's own reference documentation (`pydoc_data.topics`, shipped with
every CPython, so offline and already installed). It is the only sizeable plain English prose in
this environment that neither SFT task trains on (the movie reviews and the chatterbot Q/A pairs
are the tasks' own data); it is technical documentation, not news or fiction, so it measures
drift on general written English of one register. The sample is fixed: prose paragraphs only (no
code or tables), every k-th of them in topic order, SAMPLE_SIZE of them, each cut to
SAMPLE_TOKENS tokens; its sha256 is recorded with each run. Scoring it costs one forward pass
over SAMPLE_SIZE x SAMPLE_TOKENS tokens (about 2 s for SmolLM2-135M on 2 CPU cores).

"Before" is the model the method trains from, as it set it up, scored before training (PEFT
adapters are added when training starts; PiSSA/OLoRA then move part of the base into the adapter,
so "before" is the original model). A quantized base (QLoRA) stays frozen, so it is scored after
training with the adapter disabled (PEFT's `disable_adapter`): nothing runs on it before
training, since bitsandbytes repacks 4-bit weights for its CPU kernels on the first inference. "After" is the trained model as it is scored on the
task (adapters and virtual tokens active). `forgetting` = after - before, lower is better; a method that leaves the LM as
it was (zero_shot, feature_based) scores 0 by construction.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from harness.suite.metrics import Metric

SAMPLE_SIZE = 32
SAMPLE_TOKENS = 64
BATCH = 8

GENERAL_LOSS_BEFORE = Metric(
    "general_loss_before", False, "LM loss per token on the general-text sample, before training"
)
GENERAL_LOSS = Metric(
    "general_loss", False, "LM loss per token on the general-text sample, after training"
)
FORGETTING = Metric(
    "forgetting", False, "general_loss - general_loss_before: how much general text got worse"
)
METRICS = (GENERAL_LOSS_BEFORE, GENERAL_LOSS, FORGETTING)


@functools.cache
def sample_texts() -> tuple[str, ...]:
    """The fixed general-text sample (plain prose paragraphs of Python's reference docs)."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[key]):
            lines = block.split("\n")
            if any(line.startswith(" ") for line in lines):  # code, grammar, indented examples
                continue
            text = " ".join(line.strip() for line in lines)
            if not 250 <= len(text) <= 700 or re.search(r"[*=`]{2}|::|>>>|\[\d\]", text):
                continue
            if sum(c.isalpha() or c.isspace() for c in text) / len(text) >= 0.93:
                paragraphs.append(text)
    step = max(1, len(paragraphs) // SAMPLE_SIZE)
    return tuple(paragraphs[::step][:SAMPLE_SIZE])


def sample_sha256() -> str:
    return hashlib.sha256("\n".join(sample_texts()).encode()).hexdigest()


def general_loss(model: Any, tokenizer: Any) -> float:
    """Mean next-token loss per token of `model` on the sample (each text cut to SAMPLE_TOKENS)."""
    import torch

    from harness.backends.padding import pad_right

    encoded = [
        tokenizer(t, add_special_tokens=False)["input_ids"][:SAMPLE_TOKENS] for t in sample_texts()
    ]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), BATCH):
            ids, mask = pad_right(encoded[start : start + BATCH], pad)
            width = ids.shape[1]
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logits = logits[:, -width:].float()  # prompt tuning puts its virtual tokens in front
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = ids[:, 1:].to(logprobs.device)
            keep = mask[:, 1:].to(logprobs.device).bool()
            nll = -logprobs.gather(-1, targets[..., None])[..., 0]
            total += nll[keep].sum().item()
            count += int(keep.sum())
    model.train(was_training)
    return total / count


def metrics(before: float, after: float) -> dict[str, float]:
    return {"general_loss_before": before, "general_loss": after, "forgetting": after - before}


def report_section(db_path: Any, suite: str) -> str | None:
    """The forgetting column of `ftbench show`: per dataset, model and entry, the mean general-
    text loss before and after training and their difference (harness.store.leaderboard)."""
    from harness import store

    board = store.leaderboard(db_path, suite, metric="forgetting")
    if board.empty or not board["n"].any():
        return None
    before = store.leaderboard(db_path, suite, metric="general_loss_before")
    after = store.leaderboard(db_path, suite, metric="general_loss")
    keys = ["dataset", "model", "entry"]
    table = board[[*keys, "mean", "std", "n"]].merge(
        before[[*keys, "mean"]].rename(columns={"mean": "before"}), on=keys, how="left"
    )
    table = table.merge(after[[*keys, "mean"]].rename(columns={"mean": "after"}), on=keys)
    lines = [
        "Forgetting: LM loss per token on a fixed general-text sample (Python's reference docs, "
        f"{SAMPLE_SIZE} x {SAMPLE_TOKENS} tokens), before -> after training (lower is better)"
    ]
    for (dataset, model), group in table.groupby(["dataset", "model"], sort=False):
        lines.append(f"\n{dataset} · {model} · forgetting ↓")
        rows = [
            {
                "method": r.entry,
                "before": f"{r.before:.4f}",
                "after": f"{r.after:.4f}",
                "forgetting": f"{r.mean:+.4f}" + (f" ± {r.std:.4f}" if r.n > 1 else ""),
                "n": int(r.n),
            }
            for r in group.itertuples()
        ]
        import pandas as pd

        lines.append(pd.DataFrame(rows).to_string(index=False))
    return "\n".join(lines)
