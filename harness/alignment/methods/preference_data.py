"""On-policy preference data for the offline methods (DPO, KTO).

For each policy prompt the starting policy samples two continuations (seeds s and s+1); the proxy
reward model (the same one PPO optimises) ranks them: chosen = higher reward. So DPO/KTO see the
same prompts, the same starting policy and the same preference signal as PPO; only the use of it
differs (offline pairs vs online RL). Ties are dropped.
"""

from __future__ import annotations

from typing import Any

from harness.alignment.generation import encode_prompts, sample
from harness.alignment.methods.base import AlignContext, PolicyParams, train_prompts
from harness.alignment.reward import score_ids


def ranked_pairs(ctx: AlignContext, params: PolicyParams, proxy: Any) -> tuple[list[dict], dict]:
    tok = ctx.tokenizer
    prompts = train_prompts(ctx, params)
    prompt_ids = encode_prompts(tok, prompts)
    start = ctx.load_start()
    batch, seed = ctx.spec.training.eval_batch_size, ctx.spec.seed
    a = sample(start, tok, prompt_ids, params.max_new_tokens, seed, batch)
    b = sample(start, tok, prompt_ids, params.max_new_tokens, seed + 1, batch)
    ra = score_ids(proxy, tok.pad_token_id, a.sequences(), batch)
    rb = score_ids(proxy, tok.pad_token_id, b.sequences(), batch)
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
