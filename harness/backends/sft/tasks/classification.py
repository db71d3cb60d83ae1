"""Text classification as instruction SFT: text -> one label word, for any label set.

A dataset's `task_options:` set the classes (listed, or every label found in the data), the word
the model answers with for each, the system prompt and the user template. Scored without
generation, like multiple-choice in lm-evaluation-harness: the label word the model finds most
likely wins. Reports accuracy, macro-F1 over the classes, F1 per class (`f1/<class>`) and the
SFT loss (label + EOS) on the evaluated split. A class of the test split never seen in training
is scored like any other and recorded in the run's data checks (it flags the run).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, model_validator

from harness.backends.data import DataUnavailableError
from harness.backends.sft import forgetting
from harness.backends.sft.tasks import SftTask
from harness.backends.sft.tasks.prompting import (
    completion_text,
    format_prompt,
    score_completions,
    truncate_tokens,
)
from harness.suite.config import StrictModel
from harness.suite.metrics import (
    ACCURACY,
    EVAL_LOSS,
    MACRO_F1,
    Metric,
    accuracy,
    f1_per_class,
    macro_f1,
)  # fmt: skip
from harness.suite.tasks import TASKS, Record

PER_CLASS_F1 = "f1/"  # metric name prefix: f1/<class>


class ClassificationOptions(StrictModel):
    labels: list[str] | None = Field(None, min_length=2)  # None: every label in the data
    label_words: dict[str, str] = Field(default_factory=dict)  # class -> answer (default: class)
    system: str = "Classify the text. Answer with one of: {labels}."
    template: str = "Text: {text}\nLabel?"  # the user turn; {text} is the record's text

    @model_validator(mode="after")
    def _placeholders(self) -> ClassificationOptions:
        if "{text}" not in self.template:
            raise ValueError("task_options.template must contain {text}")
        unknown = set(self.label_words) - set(self.labels or self.label_words)
        if unknown:
            raise ValueError(
                f"task_options.label_words names {sorted(unknown)}, not in task_options.labels"
            )
        words = list(self.label_words.values())
        if len(set(words)) < len(words):
            raise ValueError("task_options.label_words gives two classes the same word")
        return self


@TASKS.register_instance("classification")
class Classification(SftTask):
    record_fields = ("text", "label")
    split_key = "text"
    metrics = (ACCURACY, MACRO_F1, EVAL_LOSS, *forgetting.METRICS)
    primary_metric = "accuracy"
    Options: ClassVar[type[StrictModel] | None] = ClassificationOptions
    classifies = True
    labels: tuple[str, ...] = ()
    options = ClassificationOptions()

    @classmethod
    def metric(cls, name: str) -> Metric | None:
        if name.startswith(PER_CLASS_F1):
            return Metric(name, True, f"F1 of class {name[len(PER_CLASS_F1) :]!r}")
        return super().metric(name)

    def configure(
        self, options: Any, records: Callable[[], dict[str, list[Record]]] | None
    ) -> Classification:
        task = type(self)()
        task.options = options
        if options.labels:
            task.labels = tuple(options.labels)
        elif records is not None:  # every class of the data, in a fixed order
            task.labels = tuple(sorted({r["label"] for rows in records().values() for r in rows}))
        return task

    # --------------------------------------------------------------- data checks

    def check_records(
        self, parts: dict[str, list[Record]], describe: Callable[[str, str], str]
    ) -> None:
        found = {r["label"] for rows in parts.values() for r in rows}
        where = " and ".join(describe(part, "label") for part in parts)
        if len(found) < 2:
            raise DataUnavailableError(
                f"{where} holds one class ({', '.join(map(repr, found)) or 'none'}): "
                "a classifier needs at least two; map options.columns.label to the label column"
            )
        listed = self.options.labels or self.labels
        if listed:
            for part, rows in parts.items():
                other = sorted({r["label"] for r in rows} - set(listed))
                if other:
                    raise DataUnavailableError(
                        f"{describe(part, 'label')} holds {other[:5]}, not among the classes "
                        f"{list(listed)}: add them to task_options.labels or drop those rows"
                    )

    def split_checks(self, splits: dict[str, list[Record]]) -> dict[str, Any]:
        train = {r["label"] for r in splits["train"]}
        unseen = sorted({r["label"] for r in splits["test"]} - train)
        return {"test_labels_not_in_train": unseen} if unseen else {}

    # --------------------------------------------------------------- prompting

    def word(self, label: str) -> str:
        return self.options.label_words.get(label, label)

    def system_prompt(self) -> str:
        return self.options.system.replace("{labels}", ", ".join(self.word(c) for c in self.labels))

    def user_prompt(self, tokenizer: Any, text: str) -> str:
        user = self.options.template.replace("{text}", text)
        return format_prompt(tokenizer, self.system_prompt(), user)

    def prompt(self, record: Record, tokenizer: Any, max_length: int) -> str:
        # The text gets what the template, the question and the answer leave of max_length, so
        # the label is never truncated away.
        overhead = _template_overhead(self, tokenizer)
        if overhead >= max_length:
            raise ValueError(
                f"training.max_length={max_length} leaves no room for the text ({overhead} "
                "tokens of template)"
            )
        text = truncate_tokens(tokenizer, record["text"], max_length - overhead)
        return self.user_prompt(tokenizer, text)

    def to_example(self, record: Record, tokenizer: Any, max_length: int) -> dict[str, str]:
        return {
            "prompt": self.prompt(record, tokenizer, max_length),
            "completion": completion_text(tokenizer, self.word(record["label"])),
        }

    # --------------------------------------------------------------- scoring

    def evaluate(
        self, model: Any, tokenizer: Any, records: list[Record], max_length: int, batch_size: int
    ) -> dict[str, float]:
        labels = self.labels
        if not labels:
            raise ValueError("classification scored without its classes (task_for without data)")
        examples = [self.to_example(r, tokenizer, max_length) for r in records]
        gold = [r["label"] for r in records]
        words = [completion_text(tokenizer, self.word(label)) for label in labels]
        option_ids = _single_token_ids(tokenizer, words)
        pairs = [(e["prompt"], e["completion"]) for e in examples]
        gold_scores = score_completions(model, tokenizer, pairs, batch_size, option_ids)
        if option_ids:  # each label is one token: one pass gives the loss and the choice
            predicted = [
                labels[max(range(len(labels)), key=lambda i: s.first_token_logprobs[i])]
                for s in gold_scores
            ]
        else:  # multi-token labels: score every option separately
            per_option = [
                score_completions(
                    model, tokenizer, [(e["prompt"], word) for e in examples], batch_size
                )
                for word in words
            ]
            predicted = [
                labels[min(range(len(labels)), key=lambda i: per_option[i][k].nll)]
                for k in range(len(records))
            ]
        mean_nll = sum(s.nll for s in gold_scores) / sum(s.n_tokens for s in gold_scores)
        per_class = f1_per_class(gold, predicted, labels)
        return {
            "accuracy": accuracy(gold, predicted),
            "macro_f1": macro_f1(gold, predicted, labels),
            "eval_loss": mean_nll,
            **{f"{PER_CLASS_F1}{label}": f1 for label, f1 in per_class.items()},
        }


def _single_token_ids(tokenizer: Any, options: list[str]) -> list[int] | None:
    ids = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
    if all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == len(ids):
        return [i[0] for i in ids]
    return None


@functools.lru_cache(maxsize=8)
def _overhead(tokenizer: Any, template: str, words: tuple[str, ...]) -> int:
    overhead = len(tokenizer(template, add_special_tokens=False)["input_ids"])
    longest = max(len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words)
    return overhead + longest + 2


def _template_overhead(task: Classification, tokenizer: Any) -> int:
    """Tokens of the prompt around an empty text, plus the longest label word and an EOS margin:
    the same for every example, so computed once per tokenizer and task setup."""
    words = tuple(task.word(c) for c in task.labels)
    return _overhead(tokenizer, task.user_prompt(tokenizer, ""), words)


def report_section(db_path: Any, suite: str) -> str | None:
    """F1 per class of each classification dataset (`ftbench show`): one row per entry, one
    column per class, means over seeds (harness.store.metric_means)."""

    from harness import store

    frame = store.metric_means(db_path, suite, PER_CLASS_F1)
    if frame.empty:
        return None
    lines = ["F1 per class (test split; mean over seeds)"]
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=False):
        table = group.pivot_table(index="entry", columns="metric", values="mean", sort=False)
        table.columns = [c[len(PER_CLASS_F1) :] for c in table.columns]
        lines.append(f"\n{dataset} · {model} · F1 per class ↑")
        lines.append(table.map(lambda v: f"{v:.4f}").rename_axis("method").to_string())
    return "\n".join(lines)
