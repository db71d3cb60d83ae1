"""Sampling continuations and scoring a policy: judge score, win-rate, KL to the start, length.

Sampling is plain (temperature 1, no top-k/top-p), the distribution PPO trains and the KL
estimate needs: KL(policy || start) = E_{y ~ policy}[log policy(y) - log start(y)], summed over
the generated tokens of each prompt and averaged over prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Generations:
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]  # up to (not including) the first EOS

    def sequences(self) -> list[list[int]]:
        return [p + r for p, r in zip(self.prompt_ids, self.response_ids, strict=True)]


def encode_prompts(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def _left_pad(seqs: list[list[int]], pad_id: int, model: Any):
    """Left-padded ids and mask on the model's device."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    device = next(model.parameters()).device
    return ids.to(device), mask.to(device)


def sample(
    model: Any, tokenizer: Any, prompt_ids: list[list[int]], max_new_tokens: int, seed: int,
    batch_size: int,
) -> Generations:  # fmt: skip
    """One sampled continuation per prompt; the same seed gives the same draws for the same model."""
    import torch

    torch.manual_seed(seed)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    responses: list[list[int]] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(prompt_ids), batch_size):
            ids, mask = _left_pad(prompt_ids[start : start + batch_size], pad, model)
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                min_new_tokens=1, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                pad_token_id=pad, eos_token_id=eos,
            )  # fmt: skip
            for row in out[:, ids.shape[1] :].tolist():
                responses.append(row[: row.index(eos)] if eos in row else row)
    return Generations(list(prompt_ids), responses)


def sequence_logprobs(model: Any, gens: Generations, pad_id: int, batch_size: int) -> list[float]:
    """log p(response | prompt) under `model`, summed over response tokens."""
    import torch

    out: list[float] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(gens.prompt_ids), batch_size):
            prompts = gens.prompt_ids[start : start + batch_size]
            responses = gens.response_ids[start : start + batch_size]
            pairs = [p + r for p, r in zip(prompts, responses, strict=True)]
            ids, mask = _left_pad(pairs, pad_id, model)
            positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding: count real tokens only
            logits = model(
                input_ids=ids, attention_mask=mask, position_ids=positions
            ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            token_lp = logprobs.gather(2, ids[:, 1:, None])[..., 0]
            for row, response in enumerate(responses):
                n = len(response)
                out.append(token_lp[row, token_lp.shape[1] - n :].sum().item() if n else 0.0)
    return out


def _win_rate(mine: list[float], theirs: list[float]) -> float:
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(mine, theirs, strict=True))
    return wins / len(mine)


def texts(tokenizer: Any, gens: Generations) -> list[str]:
    """Prompt + continuation as text: what a reward model with any tokenizer can score."""
    return [tokenizer.decode(seq, skip_special_tokens=True) for seq in gens.sequences()]


def evaluate_policy(
    policy: Any, start: Any, proxy: Any, judge: Any, tokenizer: Any, prompts: list[str],
    max_new_tokens: int, seed: int, batch_size: int, independent: Any = None,
) -> dict[str, float]:  # fmt: skip
    """Score `policy` against the starting policy on held-out prompts (same seed for both);
    `proxy` and `judge` are reward_model.Scorer objects, `independent` a judges.py judge (its
    metrics are left out without one)."""
    prompt_ids = encode_prompts(tokenizer, prompts)
    pad = tokenizer.pad_token_id
    mine = sample(policy, tokenizer, prompt_ids, max_new_tokens, seed, batch_size)
    base = sample(start, tokenizer, prompt_ids, max_new_tokens, seed, batch_size)
    mine_text, base_text = texts(tokenizer, mine), texts(tokenizer, base)
    judge_mine, judge_base = judge.score(mine_text), judge.score(base_text)
    proxy_mine, proxy_base = proxy.score(mine_text), proxy.score(base_text)
    kl = [
        a - b
        for a, b in zip(
            sequence_logprobs(policy, mine, pad, batch_size),
            sequence_logprobs(start, mine, pad, batch_size),
            strict=True,
        )
    ]
    n = len(prompts)
    win, proxy_win = _win_rate(judge_mine, judge_base), _win_rate(proxy_mine, proxy_base)
    scores = {}
    if independent is not None:
        indep_mine, indep_base = independent.score(mine_text), independent.score(base_text)
        scores = {"indep_judge_score": sum(indep_mine) / n,
                  "indep_win_rate": _win_rate(indep_mine, indep_base)}  # fmt: skip
    return {
        **scores,
        "judge_score": sum(judge_mine) / n,
        "win_rate": win,
        "proxy_reward": sum(proxy_mine) / n,
        "proxy_win_rate": proxy_win,
        "proxy_judge_gap": proxy_win - win,
        "kl": sum(kl) / n,
        "gen_length": sum(len(r) for r in mine.response_ids) / n,
    }
