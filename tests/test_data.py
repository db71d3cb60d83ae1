from __future__ import annotations

import pytest

from harness.backends.data import (
    ChatterbotOptions,
    ChatterbotQA,
    DataLeakError,
    MovieReviewOptions,
    MovieReviews,
    check_no_overlap,
    make_splits,
)

SIZES = {"train": 300, "validation": 50, "test": 100}


@pytest.fixture(scope="module")
def reviews():
    return MovieReviews().load(MovieReviewOptions(subset="rotten_tomatoes", max_words=40))


def test_movie_reviews_are_real_and_labelled(reviews):
    assert len(reviews) > 3000
    labels = {r["label"] for r in reviews}
    assert labels == {"positive", "negative"}
    assert all("<br" not in r["text"] for r in reviews[:500])


def test_splits_are_deterministic_and_disjoint(reviews):
    a = make_splits(reviews, SIZES, seed=0, key_field="text")
    b = make_splits(reviews, SIZES, seed=0, key_field="text")
    c = make_splits(reviews, SIZES, seed=1, key_field="text")
    assert a == b
    assert a.fingerprint != c.fingerprint
    assert (len(a.train), len(a.validation), len(a.test)) == (300, 50, 100)
    texts = [set(r["text"] for r in split) for split in (a.train, a.validation, a.test)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])


def test_test_split_does_not_depend_on_train_size(reviews):
    small = make_splits(reviews, {**SIZES, "train": 10}, seed=0, key_field="text")
    big = make_splits(reviews, SIZES, seed=0, key_field="text")
    assert small.test == big.test


def test_same_input_never_straddles_splits():
    # Two answers to one question: both must land in the same split.
    records = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(40)]
    records += [{"question": "q0", "answer": "another answer"}]
    splits = make_splits(
        records, {"train": 20, "validation": 5, "test": 10}, seed=3, key_field="question"
    )
    where = [
        name for name, rows in splits.as_dict().items() if any(r["question"] == "q0" for r in rows)
    ]
    assert len(where) <= 1


def test_overlap_detector_catches_a_planted_duplicate():
    splits = {
        "train": [{"text": "a", "label": "positive"}, {"text": "b", "label": "negative"}],
        "validation": [],
        "test": [{"text": "b", "label": "negative"}],
    }
    with pytest.raises(DataLeakError, match="train and test"):
        check_no_overlap(splits, "text")


def test_too_few_examples_is_a_clear_error():
    records = [{"text": str(i), "label": "positive"} for i in range(10)]
    with pytest.raises(Exception, match="lower splits.train"):
        make_splits(records, {"train": 20, "test": 5}, seed=0, key_field="text")


def test_chatterbot_pairs_are_deduplicated():
    pairs = ChatterbotQA().load(ChatterbotOptions())
    keys = [(p["question"], p["answer"]) for p in pairs]
    assert len(keys) == len(set(keys))
    assert 1000 < len(pairs) < 2393  # 2,393 raw consecutive turns, ~1,257 unique
