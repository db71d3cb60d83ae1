"""Data checks recorded with every run (result.json train_info.data_checks, DuckDB data_checks).

- overlap: inputs that appear in train and in validation/test (splits are made leak-free, so
  anything but 0 means a data source or split bug; such a run is flagged);
- truncation: examples whose tokenized prompt + completion + EOS exceed max_length (TRL cuts the
  end, i.e. the label and EOS), and inputs the task shortened to fit;
- EOS: whether the EOS token is in the trained labels of each example, after TRL's preparation
  and collation (a pad token equal to EOS can mask it in some collators);
- the pad token, and whether it is the EOS token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

UNLIMITED = 1_000_000  # a max_length no input reaches: the task then shortens nothing


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split())


def shared_with_train(splits: dict[str, list[dict[str, str]]], field: str) -> dict[str, set[str]]:
    """Per evaluation split, the values of `field` that also occur in train (exactly)."""
    train = {r[field] for r in splits.get("train", [])}
    return {
        name: train & {r[field] for r in splits.get(name, [])} for name in ("validation", "test")
    }


def split_overlap(
    splits: dict[str, list[dict[str, str]]], key_field: str, group_fields: tuple[str, ...] = ()
) -> dict[str, Any]:
    """How many validation/test records share their input with train: exactly (`overlap`), and
    after normalizing case and whitespace (`near_overlap`, recorded but not flagged); and for each
    group field (values that keep records together, e.g. a retrieval positive) how many share that
    value (`group_overlap`). Splits are made leak-free (data.make_splits raises on the same exact
    overlap), so anything but 0 here means a data source or split bug."""
    out: dict[str, Any] = {
        "key_field": key_field,
        "overlap": _shared_records(splits, key_field),
        "near_overlap": _shared_records(splits, key_field, _normalize),
    }
    if group_fields:
        out["group_overlap"] = {f: _shared_records(splits, f) for f in group_fields}
    return out


def _shared_records(
    splits: dict[str, list[dict[str, str]]], field: str, key: Any = lambda value: value
) -> dict[str, int]:
    train = {key(r[field]) for r in splits.get("train", [])}
    return {
        name: sum(key(r[field]) in train for r in splits.get(name, []))
        for name in ("validation", "test")
    }


def truncation_share(lengths: Iterable[int], max_length: int) -> float | None:
    """Share of sequences longer than max_length (None for no sequences)."""
    lengths = list(lengths)
    return sum(n > max_length for n in lengths) / len(lengths) if lengths else None


def tokenizer_checks(tokenizer: Any) -> dict[str, Any]:
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    return {
        "pad_token": tokenizer.pad_token,
        "eos_token": tokenizer.eos_token,
        "pad_token_set": pad is not None,
        "pad_is_eos": pad is not None and pad == eos,
    }


def example_checks(
    tokenizer: Any,
    examples: list[dict[str, str]],
    shortened: list[bool],
    prepared: Any,
    collator: Any,
    max_length: int,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Checks on the SFT examples: `examples` as given to TRL, `prepared` its tokenized dataset
    (input_ids, labels), `collator` the trainer's data collator (it builds the trained labels)."""
    eos_text, eos_id = tokenizer.eos_token or "", tokenizer.eos_token_id
    lengths = []
    for e in examples:  # tokenized the way TRL does: prompt + completion, EOS appended if missing
        completion = (
            e["completion"] if e["completion"].endswith(eos_text) else e["completion"] + eos_text
        )
        lengths.append(len(tokenizer(text=e["prompt"] + completion)["input_ids"]))
    with_eos = 0
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in prepared]
    for start in range(0, len(rows), batch_size):
        labels = collator(rows[start : start + batch_size])["labels"]
        with_eos += int((labels == eos_id).any(dim=1).sum()) if eos_id is not None else 0
    return {
        "max_length": max_length,
        "train_examples": len(examples),
        "trained_examples": len(rows),
        "dropped_examples": len(examples) - len(rows),  # TRL drops examples left with no label
        "truncated_share": truncation_share(lengths, max_length),
        "max_tokens": max(lengths, default=None),
        "input_shortened_share": sum(shortened) / len(shortened) if shortened else None,
        "eos_trained_share": with_eos / len(rows) if rows else None,
    }


def issues(checks: dict[str, Any]) -> list[str]:
    """What flags a run: the rules live here, the store only reads the list."""
    found = []
    for split, n in (checks.get("overlap") or {}).items():
        if n:
            found.append(f"{n} {split} inputs also in train")
    for field, per_split in (checks.get("group_overlap") or {}).items():
        for split, n in per_split.items():
            if n:
                found.append(f"{n} {split} {field}s also in train")
    if checks.get("pad_token_set") is False:
        found.append("no pad token")
    eos_share = checks.get("eos_trained_share")
    if eos_share is not None and eos_share < 1.0:
        found.append(f"EOS trained in only {eos_share:.0%} of examples")
    return found
