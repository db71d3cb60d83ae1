"""Sentiment classification as instruction SFT: review -> "positive" / "negative".

Scored without generation, like multiple-choice in lm-evaluation-harness: the label whose tokens
the model finds most likely wins. eval_loss is the SFT loss (label + EOS) on the test split.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.backends.sft import forgetting
from harness.backends.sft.tasks import SftTask
from harness.backends.sft.tasks.prompting import (
    completion_text,
    format_prompt,
    score_completions,
    truncate_tokens,
)
from harness.suite.metrics import ACCURACY, EVAL_LOSS, MACRO_F1, accuracy, macro_f1
from harness.suite.tasks import TASKS, Record

SYSTEM = "Answer with one word: positive or negative."
LABELS = ("negative", "positive")


@TASKS.register_instance("sentiment")
class Sentiment(SftTask):
    record_fields = ("text", "label")
    split_key = "text"
    metrics = (ACCURACY, MACRO_F1, EVAL_LOSS, *forgetting.METRICS)
    primary_metric = "accuracy"
    labels = LABELS

    def prompt(self, record: Record, tokenizer: Any, max_length: int) -> str:
        # The review gets what the template, the question and the answer leave of max_length, so
        # the label is never truncated away.
        overhead = _template_overhead(tokenizer)
        if overhead >= max_length:
            raise ValueError(
                f"training.max_length={max_length} leaves no room for the review ({overhead} tokens of template)"
            )
        review = truncate_tokens(tokenizer, record["text"], max_length - overhead)
        return self._user_prompt(tokenizer, review)

    @staticmethod
    def _user_prompt(tokenizer: Any, review: str) -> str:
        return format_prompt(tokenizer, SYSTEM, f"Movie review: {review}\nSentiment?")

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        return {
            "prompt": self.prompt(record, tokenizer, max_length),
            "completion": completion_text(tokenizer, record["label"]),
        }

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> dict[str, float]:
        examples = [self.to_example(r, tokenizer, max_length) for r in records]
        gold = [r["label"] for r in records]
        option_ids = _single_token_ids(
            tokenizer, [completion_text(tokenizer, label) for label in LABELS]
        )
        pairs = [(e["prompt"], e["completion"]) for e in examples]
        gold_scores = score_completions(model, tokenizer, pairs, batch_size, option_ids)
        if option_ids:  # each label is one token: one pass gives the loss and the choice
            predicted = [
                LABELS[max(range(len(LABELS)), key=lambda i: s.first_token_logprobs[i])]
                for s in gold_scores
            ]
        else:  # multi-token labels: score every option separately
            per_option = [
                score_completions(
                    model,
                    tokenizer,
                    [(e["prompt"], completion_text(tokenizer, label)) for e in examples],
                    batch_size,
                )
                for label in LABELS
            ]
            predicted = [
                LABELS[min(range(len(LABELS)), key=lambda i: per_option[i][k].nll)]
                for k in range(len(records))
            ]
        mean_nll = sum(s.nll for s in gold_scores) / sum(s.n_tokens for s in gold_scores)
        return {
            "accuracy": accuracy(gold, predicted),
            "macro_f1": macro_f1(gold, predicted, LABELS),
            "eval_loss": mean_nll,
        }


def _single_token_ids(tokenizer: Any, options: list[str]) -> list[int] | None:
    ids = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
    if all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == len(ids):
        return [i[0] for i in ids]
    return None


@functools.lru_cache(maxsize=8)
def _template_overhead(tokenizer: Any) -> int:
    """Tokens of the prompt around an empty review, plus the longest label and EOS margin: the
    same for every example, so computed once per tokenizer."""
    template = Sentiment._user_prompt(tokenizer, "")
    overhead = len(tokenizer(template, add_special_tokens=False)["input_ids"])
    longest = max(len(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in LABELS)
    return overhead + longest + 2
