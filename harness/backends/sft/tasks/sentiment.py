"""Sentiment classification: a preset of `classification` (classification.py) with the classes
negative/positive and the movie-review prompt it always had, so its prompts, and the run_ids of
suites that use it, are unchanged. Its task_options may still change any of them."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from harness.backends.sft.tasks.classification import Classification, ClassificationOptions
from harness.suite.config import StrictModel
from harness.suite.tasks import TASKS

LABELS = ("negative", "positive")


class SentimentOptions(ClassificationOptions):
    labels: list[str] | None = Field(list(LABELS), min_length=2)
    system: str = "Answer with one word: positive or negative."
    template: str = "Movie review: {text}\nSentiment?"


@TASKS.register_instance("sentiment")
class Sentiment(Classification):
    Options: ClassVar[type[StrictModel] | None] = SentimentOptions
    labels = LABELS
    options = SentimentOptions()
