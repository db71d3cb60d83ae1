"""Prompt formatting and completion scoring shared by the text tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def format_prompt(tokenizer: Any, system: str, user: str) -> str:
    """The model's own chat template when it has one, else a plain instruction layout."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n\n{user}\nAnswer:"


def completion_text(tokenizer: Any, answer: str) -> str:
    # A base model without a chat template continues after "Answer:", so the answer needs a space.
    return answer if getattr(tokenizer, "chat_template", None) else " " + answer


def truncate_tokens(tokenizer: Any, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


@dataclass
class CompletionScore:
    nll: float  # summed over completion tokens
    n_tokens: int
    first_token_logprobs: list[float]  # log p(token | prompt) for each requested token id


def held_out_nll(model: Any, tokenizer: Any, examples: list[dict], batch_size: int) -> float:
    """The completion loss of `to_example` dicts, token-weighted (eval_loss; a mean over tokens,
    not examples, so there is no per-example score of it to pair runs on)."""
    pairs = [(e["prompt"], e["completion"]) for e in examples]
    scores = score_completions(model, tokenizer, pairs, batch_size)
    return sum(s.nll for s in scores) / sum(s.n_tokens for s in scores)


def score_completions(
    model: Any,
    tokenizer: Any,
    pairs: list[tuple[str, str]],
    batch_size: int,
    first_token_ids: list[int] | None = None,
) -> list[CompletionScore]:
    """Teacher-forced NLL of each completion given its prompt, tokenized the way TRL's SFT does
    (prompt and prompt+completion tokenized separately, completion ends with EOS).

    Three things keep scoring cheap without changing what is computed: the tokens every example
    starts with (the chat template and instruction) run once and their attention keys and values
    are reused by every batch; examples are batched by length (little padding; scores come back in
    the order given); and the LM head runs only at the positions that predict a completion token
    (`logits_to_keep`), not over every position of a vocabulary-sized output."""
    import copy

    import torch

    eos = tokenizer.eos_token or ""
    encoded = []
    for prompt, completion in pairs:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(prompt + completion + eos, add_special_tokens=False)["input_ids"]
        encoded.append((len(prompt_ids), full_ids))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][1]))
    scores: list[CompletionScore | None] = [None] * len(encoded)
    model.eval()
    with torch.no_grad():
        shared = shared_prefix(encoded)
        cache, cached, forward = None, 0, model
        if shared:
            prefix = torch.tensor([encoded[0][1][:shared]], device=device)
            cache = model(input_ids=prefix, use_cache=True).past_key_values
            cached = cache.get_seq_length()  # prompt and prefix tuning put their tokens in front
            if is_prompt_learning(model):  # those tokens are in the cache now: skip PEFT's wrapper
                forward = model.get_base_model()
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encoded[i][1]) for i in rows) - shared
            input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), cached + width), dtype=torch.long)
            mask[:, :cached] = 1
            for row, i in enumerate(rows):
                ids = encoded[i][1][shared:]
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, cached : cached + len(ids)] = 1
            past = None
            if cache is not None:
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(len(rows))
            # Position p predicts token p + 1; counted from the end (p - width), since prompt
            # tuning without a cache puts its virtual tokens in front of the sequence.
            needed = sorted(
                {p - shared for i in rows for p in range(encoded[i][0] - 1, len(encoded[i][1]) - 1)}
            )
            column = {p: c for c, p in enumerate(needed)}
            logits = forward(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), past_key_values=past,
                logits_to_keep=torch.tensor(needed, device=device) - width,
            ).logits  # fmt: skip
            for row, i in enumerate(rows):
                prompt_len, ids = encoded[i]
                cols = [column[p - shared] for p in range(prompt_len - 1, len(ids) - 1)]
                logprobs = torch.log_softmax(logits[row, cols].float(), dim=-1)
                targets = torch.tensor(ids[prompt_len:], device=logprobs.device)
                nll = -logprobs.gather(1, targets[:, None]).sum().item()
                first = logprobs[0, first_token_ids].tolist() if first_token_ids else []
                scores[i] = CompletionScore(nll, len(targets), first)
    return scores


def is_prompt_learning(model: Any) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning)


def shared_prefix(encoded: list[tuple[int, list[int]]]) -> int:
    """How many leading tokens every sequence shares: at most all but the last prompt token of
    the shortest prompt, which predicts a completion."""
    import os

    common = len(os.path.commonprefix([ids for _, ids in encoded])) if len(encoded) > 1 else 0
    return max(0, min([common, *(prompt_len - 1 for prompt_len, _ in encoded)]))
