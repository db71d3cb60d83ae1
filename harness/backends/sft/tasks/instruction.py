"""Instruction following: prompt -> response SFT on the user's own pairs.

Scored two ways: held-out loss and perplexity of the reference response (teacher-forced, as `qa`
does), and greedy generation of at most `max_new_tokens` tokens compared with the reference:
exact match and token-overlap F1 (SQuAD's: lower case, punctuation and articles dropped, bag of
words). Generation is bounded so scoring a test split costs a known number of forward passes.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field

from harness.backends import Evaluation
from harness.backends.data import example_scores
from harness.backends.sft import forgetting
from harness.backends.sft.tasks import SftTask
from harness.backends.sft.tasks.prompting import (
    completion_text,
    format_prompt,
    held_out_nll,
    truncate_tokens,
)
from harness.suite.config import StrictModel
from harness.suite.metrics import EVAL_LOSS, PERPLEXITY, Metric, perplexity
from harness.suite.tasks import TASKS, Record

EXACT_MATCH = Metric("exact_match", True, "share of generated answers equal to the reference")
TOKEN_F1 = Metric("token_f1", True, "bag-of-words F1 of generated answer vs reference")


class InstructionOptions(StrictModel):
    system: str = "You are a helpful assistant."
    max_new_tokens: int = Field(32, ge=1, le=512)  # generation bound per test example


@TASKS.register_instance("instruction")
class Instruction(SftTask):
    record_fields = ("prompt", "response")
    split_key = "prompt"
    metrics = (EVAL_LOSS, PERPLEXITY, EXACT_MATCH, TOKEN_F1, *forgetting.METRICS)
    primary_metric = "perplexity"
    Options: ClassVar[type[StrictModel] | None] = InstructionOptions
    options = InstructionOptions()

    def configure(self, options: Any, records: Callable[[], dict[str, list[Record]]] | None) -> Any:
        task = type(self)()
        task.options = options
        return task

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        prompt = truncate_tokens(tokenizer, record["prompt"], max_length // 2)
        response = truncate_tokens(tokenizer, record["response"], max_length // 3)
        return {
            "prompt": format_prompt(tokenizer, self.options.system, prompt),
            "completion": completion_text(tokenizer, response),
        }

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> Evaluation:
        examples = [self.to_example(r, tokenizer, max_length) for r in records]
        mean_nll = held_out_nll(model, tokenizer, examples, batch_size)
        answers = generate(
            model, tokenizer, [e["prompt"] for e in examples], batch_size,
            self.options.max_new_tokens,
        )  # fmt: skip
        gold = [r["response"] for r in records]
        matched = list(map(exact_match, answers, gold))
        overlap = list(map(token_f1, answers, gold))
        metrics = {
            "eval_loss": mean_nll,
            "perplexity": perplexity(mean_nll),
            "exact_match": sum(matched) / len(gold),
            "token_f1": sum(overlap) / len(gold),
        }
        # exact match and token F1 are means over answers: their per-answer scores pair runs
        return Evaluation(
            metrics, examples=example_scores(records, exact_match=matched, token_f1=overlap)
        )


def generate(
    model: Any, tokenizer: Any, prompts: list[str], batch_size: int, max_new_tokens: int
) -> list[str]:
    """Greedy continuations of each prompt (left-padded batches), special tokens dropped."""
    import torch

    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[str] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                batch = tokenizer(
                    prompts[start : start + batch_size], return_tensors="pt", padding=True,
                    add_special_tokens=False,
                ).to(device)  # fmt: skip
                ids = model.generate(
                    **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id
                )
                new = ids[:, batch["input_ids"].shape[1] :]
                out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return [o.strip() for o in out]


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> list[str]:
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def exact_match(answer: str, gold: str) -> float:
    return float(normalize(answer) == normalize(gold))


def token_f1(answer: str, gold: str) -> float:
    a, g = normalize(answer), normalize(gold)
    if not a or not g:
        return float(a == g)
    common = sum((Counter(a) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(g)
    return 2 * precision * recall / (precision + recall)


def report_section(db_path: Any, suite: str) -> str | None:
    """Exact match and token F1 of generated answers per instruction dataset (`ftbench show`)."""
    import pandas as pd

    from harness import store

    frame = pd.concat([store.metric_means(db_path, suite, m.name) for m in (EXACT_MATCH, TOKEN_F1)])
    frame = frame[frame["metric"].isin([EXACT_MATCH.name, TOKEN_F1.name])]
    if frame.empty:
        return None
    lines = ["Generated answers (greedy, bounded max_new_tokens; test split, mean over seeds)"]
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=False):
        table = group.pivot_table(index="entry", columns="metric", values="mean", sort=False)
        lines.append(f"\n{dataset} · {model} · generation ↑")
        lines.append(table.map(lambda v: f"{v:.4f}").rename_axis("method").to_string())
    return "\n".join(lines)
