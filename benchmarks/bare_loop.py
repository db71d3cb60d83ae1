"""A bare PyTorch + PEFT training loop for one SFT run spec: the baseline the harness is held to.

    python benchmarks/bare_loop.py SPEC_JSON OUT_JSON

Same model (loaded as the harness loads it), same PEFT config (the method's own: adapters in the
decoder's layers, e.g. LoRA, IA3, DoRA, or full/freeze fine-tuning), same training examples (the
task's prompt/completion pairs, tokenized as TRL does: prompt + completion + EOS, loss on the
completion only), the same micro-batches in the order the Trainer draws them, padded to their
longest example, same length, precision and optimizer (torch AdamW, gradients clipped at the
Trainer's default norm). The loss computes the LM head on the trained positions only, as TRL's
default `chunked_nll` does, so both loops do the same arithmetic; nothing else (no Trainer, no
callbacks, no logging, no metrics, no learning-rate schedule). Each optimizer step is timed as the
harness times it (harness/run/speed.py: wall time between step ends, synchronised on CUDA).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


MAX_GRAD_NORM = 1.0  # the Trainer's default, which harness runs keep


def trainer_order(n: int, batch_size: int, batches: int, seed: int) -> list[list[int]]:
    """The micro-batches the harness's Trainer draws, so both arms train on the same batches:
    accelerate's seedable sampler permutes the examples with a generator seeded `seed + epoch`
    each epoch (the Trainer's data_seed is the run seed), and an epoch's last batch may be short."""
    import torch

    found: list[list[int]] = []
    epoch = 0
    while len(found) < batches:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        found += [perm[i : i + batch_size] for i in range(0, n, batch_size)]
        epoch += 1
    return found[:batches]


def main(argv: list[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    from harness.models.offline import configure_offline_mode

    configure_offline_mode()
    import torch
    from peft import get_peft_model

    from harness.backends.data import load_splits
    from harness.backends.sft.methods import METHODS, MethodContext
    from harness.backends.sft.methods.base import load_dtype
    from harness.models import load_tokenizer, resolve_model
    from harness.run.speed import summarize
    from harness.suite.spec import RunSpec
    from harness.suite.tasks import TASKS

    started = time.perf_counter()
    spec = RunSpec.model_validate_json(spec_path.read_text())
    t = spec.training
    torch.manual_seed(spec.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    method = METHODS.get(spec.method)
    resolved = resolve_model(spec.model)
    tokenizer = load_tokenizer(resolved)
    ctx = MethodContext(
        resolved, tokenizer, device, weights_dtype=load_dtype(method, device, t.precision)
    )
    setup = method.setup(ctx, method.Params.model_validate(spec.params))
    model = setup.model
    if setup.peft_config is not None:
        model = get_peft_model(model, setup.peft_config)
    for p in model.parameters():  # trained parameters in fp32, as the harness keeps them
        if p.requires_grad:
            p.data = p.data.float()
    model.to(device).train()

    task = TASKS.get(spec.dataset.task)
    rows = []
    for record in load_splits(spec.dataset).train:
        example = task.to_example(record, tokenizer, t.max_length)
        prompt = tokenizer(example["prompt"], add_special_tokens=False)["input_ids"]
        full = tokenizer(example["prompt"] + example["completion"] + tokenizer.eos_token,
                         add_special_tokens=False)["input_ids"][: t.max_length]  # fmt: skip
        rows.append((full, len(prompt)))
    order = trainer_order(len(rows), t.batch_size, t.max_steps * t.grad_accum, spec.seed)

    def batch(i: int):
        chunk = [rows[k] for k in order[i]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for r, (seq, n_prompt) in enumerate(chunk):
            ids[r, : len(seq)] = torch.tensor(seq)
            labels[r, n_prompt : len(seq)] = ids[r, n_prompt : len(seq)]
            mask[r, : len(seq)] = 1
        return ids.to(device), mask.to(device), labels.to(device), int(mask.sum())

    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=t.learning_rate, weight_decay=t.weight_decay)
    half = (
        {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.precision)
        if device == "cuda"
        else None
    )
    scaler = torch.amp.GradScaler("cuda", enabled=half is torch.float16)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, head = base.get_decoder(), base.get_output_embeddings()  # adapters live inside
    if getattr(setup.peft_config, "is_prompt_learning", False):
        raise SystemExit(
            f"{spec.method}: prompt learning prepends tokens outside the decoder; "
            "the bare loop covers methods whose adapters sit in the layers"
        )

    def sync() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    step_s, step_tokens, micro = [], [], 0
    last = sync()
    load_s = last - started
    for _ in range(t.max_steps):
        tokens = 0
        for _ in range(t.grad_accum):
            ids, mask, labels, n = batch(micro)
            micro += 1
            tokens += n
            with torch.autocast(device, dtype=half or torch.float32, enabled=half is not None):
                # The decoder (with the adapters injected in its layers), then the head on the
                # trained positions only: what TRL's chunked_nll computes.
                hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
                targets = labels[:, 1:].reshape(-1)
                keep = targets != -100
                logits = head(hidden[:, :-1].reshape(-1, hidden.size(-1))[keep]).float()
                loss = torch.nn.functional.cross_entropy(logits, targets[keep])
            scaler.scale(loss / t.grad_accum).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trained, MAX_GRAD_NORM)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        now = sync()
        step_s.append(now - last)
        step_tokens.append(tokens)
        last = now
    out = summarize(step_s, step_tokens, t.batch_size * t.grad_accum)
    out.update(load_s=load_s, total_s=time.perf_counter() - started, device=device)
    out_path.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
