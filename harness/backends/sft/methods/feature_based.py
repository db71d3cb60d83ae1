"""Feature-based: the pre-trained LM as a frozen feature extractor, only a task head trained.

The chapter's first strategy. The LM reads each example's prompt (the same text SFT trains on,
chat template included) and its final hidden states are pooled (`last`: the last prompt token,
the position that would predict the answer; `mean`: every prompt token) into one vector; a linear
layer or a small MLP on those vectors is trained with cross-entropy over the task's labels. Scored
with the task's own classification metrics (accuracy, macro-F1) on the same split as the SFT rows,
so it ranks beside them. `eval_loss` is not reported: the head's cross-entropy is a different
number from the LM's completion loss the SFT rows report under that name.

Training uses the run's learning_rate, weight_decay, batch_size x grad_accum (examples a step)
and max_steps, with AdamW at a constant rate; the features are standardised with the training
split's mean and deviation (part of the head, saved with it). Train time includes reading the
training split through the LM once.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.suite.config import StrictModel
from harness.suite.metrics import accuracy, macro_f1

HEAD_FILE = "feature_head.safetensors"


class FeatureParams(StrictModel):
    pooling: Literal["last", "mean"] = "last"
    head: Literal["linear", "mlp"] = "linear"
    mlp_hidden: int = Field(256, ge=1)  # the MLP's hidden width (head: mlp)


def _classes(spec: Any) -> tuple[str, ...]:
    from harness.suite.tasks import TASKS

    return tuple(getattr(TASKS.get(spec.dataset.task), "labels", ()) or ())


def build_model(lm: Any, params: FeatureParams, n_classes: int) -> Any:
    """The frozen LM and its trainable head as one module: its trainable parameters are the head's
    (what the run counts and saves), its total includes the LM."""
    import torch
    from torch import nn

    hidden = lm.config.hidden_size
    if params.head == "linear":
        head = nn.Linear(hidden, n_classes)
    else:
        head = nn.Sequential(
            nn.Linear(hidden, params.mlp_hidden), nn.ReLU(), nn.Linear(params.mlp_hidden, n_classes)
        )

    class FeatureClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = lm.requires_grad_(False)
            self.head = head
            self.register_buffer("mean", torch.zeros(hidden))
            self.register_buffer("std", torch.ones(hidden))

        def forward(self, features: Any) -> Any:
            return self.head((features - self.mean) / self.std)

    return FeatureClassifier()


def pooled_features(
    lm: Any, tokenizer: Any, texts: list[str], pooling: str, batch_size: int
) -> tuple[Any, int]:
    """(one fp32 vector per text, tokens read): the LM's final hidden states, pooled. Texts are
    batched by length and padded on the right, so the last real token is at length - 1."""
    import torch

    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    device = next(lm.parameters()).device
    decoder = lm.base_model  # the transformer without its LM head: no vocabulary-sized output
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.zeros(len(encoded), lm.config.hidden_size)
    lm.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[r, : len(encoded[i])] = 1
            hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device))
            states = hidden.last_hidden_state.float().cpu()
            if pooling == "last":
                pooled = states[torch.arange(len(rows)), mask.sum(1) - 1]
            else:
                pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out[rows] = pooled
    return out, sum(len(e) for e in encoded)


@register("feature_based")
class FeatureBased(Method):
    Params = FeatureParams

    def check(self, spec: Any, params: FeatureParams) -> None:
        if not _classes(spec):
            raise ValueError(
                f"method feature_based trains a classifier over a task's labels; task "
                f"{spec.dataset.task!r} has none (use it with a classification task, e.g. "
                f"sentiment)"
            )

    def setup(self, ctx: MethodContext, params: FeatureParams) -> MethodSetup:
        # Frozen from the start: the memory estimator then counts no LM gradients or state.
        lm = ctx.load_model().requires_grad_(False)
        return MethodSetup(lm, notes={"feature_pooling": params.pooling})

    def _texts(self, prepared: Any, records: list[dict], max_length: int) -> list[str]:
        task, tokenizer = prepared.task, prepared.tokenizer
        return [task.to_example(r, tokenizer, max_length)["prompt"] for r in records]

    def train(self, run: Any, prepared: Any, callbacks: list) -> Any:
        import torch

        from harness.backends import Trained

        spec, params, t = run.spec, run.params, run.spec.training
        classes = _classes(spec)
        t0 = time.perf_counter()
        texts = self._texts(prepared, prepared.splits.train, t.max_length)
        features, tokens = pooled_features(
            prepared.model, prepared.tokenizer, texts, params.pooling, t.eval_batch_size
        )
        labels = torch.tensor([classes.index(r["label"]) for r in prepared.splits.train])
        model = build_model(prepared.model, params, len(classes))
        model.mean.copy_(features.mean(0))
        model.std.copy_(features.std(0, unbiased=False).clamp_min(1e-6))
        device = next(prepared.model.parameters()).device
        model.head.to(device)
        model.to(device)
        features, labels = features.to(device), labels.to(device)
        optimizer = torch.optim.AdamW(
            model.head.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay
        )
        generator = torch.Generator().manual_seed(spec.seed)
        per_step, order, cursor = t.batch_size * t.grad_accum, torch.empty(0, dtype=torch.long), 0
        model.head.train()
        for step in range(1, t.max_steps + 1):
            if cursor + per_step > len(order):  # a new epoch: a fresh seeded permutation
                order, cursor = torch.randperm(len(labels), generator=generator), 0
            batch = order[cursor : cursor + per_step].to(device)
            cursor += per_step
            loss = torch.nn.functional.cross_entropy(model(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % t.logging_steps == 0 or step == t.max_steps:
                run.curve.append(
                    {"step": step, "loss": float(loss), "learning_rate": t.learning_rate}
                )
        saved = None
        if t.save_weights and t.max_steps > 0:
            from safetensors.torch import save_file

            saved = run.out_dir / "weights"
            saved.mkdir(parents=True, exist_ok=True)
            state = {f"head.{k}": v for k, v in model.head.state_dict().items()}
            state.update(mean=model.mean, std=model.std)
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in state.items()}, saved / HEAD_FILE
            )
        return Trained(
            model,
            steps=t.max_steps,
            train_s=time.perf_counter() - t0,
            tokens=tokens,
            notes={"feature_train_examples": len(labels)},
            saved_to=saved,
        )

    def language_model(self, model: Any) -> Any:
        return model.lm

    def evaluate(self, run: Any, prepared: Any, model: Any) -> Any:
        import torch

        from harness.backends import Evaluation

        t, classes = run.spec.training, _classes(run.spec)
        records = prepared.eval_records
        texts = self._texts(prepared, records, t.max_length)
        features, _ = pooled_features(
            model.lm, prepared.tokenizer, texts, run.params.pooling, t.eval_batch_size
        )
        model.head.eval()
        with torch.no_grad():
            device = model.mean.device
            predicted = [classes[i] for i in model(features.to(device)).argmax(-1).tolist()]
        gold = [r["label"] for r in records]
        return Evaluation(
            {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted, classes)}
        )
