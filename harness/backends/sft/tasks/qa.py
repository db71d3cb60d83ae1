"""Question -> answer SFT, scored by held-out completion loss and perplexity."""

from __future__ import annotations

from typing import Any

from harness.backends import Evaluation
from harness.backends.sft import forgetting
from harness.backends.sft.tasks import SftTask
from harness.backends.sft.tasks.prompting import (
    completion_text,
    format_prompt,
    held_out_nll,
    truncate_tokens,
)
from harness.suite.metrics import EVAL_LOSS, PERPLEXITY, perplexity
from harness.suite.tasks import TASKS, Record

SYSTEM = "You are a helpful assistant. Answer the question briefly."


@TASKS.register_instance("qa")
class QuestionAnswer(SftTask):
    record_fields = ("question", "answer")  # plus an optional `context` (a passage to use)
    split_key = "question"
    metrics = (EVAL_LOSS, PERPLEXITY, *forgetting.METRICS)
    primary_metric = "perplexity"

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        question = truncate_tokens(tokenizer, record["question"], max_length // 2)
        answer = truncate_tokens(tokenizer, record["answer"], max_length // 3)
        user = question
        if record.get("context"):  # optional (Dolly's reference text): after the question, in
            # what is left of the prompt's half of max_length
            room = max_length // 2 - len(tokenizer(question, add_special_tokens=False)["input_ids"])
            context = truncate_tokens(tokenizer, record["context"], room) if room > 0 else ""
            user = f"{question}\n\n{context}" if context else question
        return {
            "prompt": format_prompt(tokenizer, SYSTEM, user),
            "completion": completion_text(tokenizer, answer),
        }

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> Evaluation:
        examples = [self.to_example(r, tokenizer, max_length) for r in records]
        mean_nll = held_out_nll(model, tokenizer, examples, batch_size)
        return Evaluation({"eval_loss": mean_nll, "perplexity": perplexity(mean_nll)})
