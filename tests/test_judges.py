"""The independent judge (harness/backends/alignment/judges.py): a scorer of another kind than
the trained reward models, selectable per suite."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.backends.alignment.judges import IndependentJudge, load_judge


def test_the_lexicon_judge_scores_a_positive_text_above_a_negative_one():
    judge = load_judge(IndependentJudge(), "cpu", batch_size=4)
    good, bad, flat = judge.score([
        "This movie was wonderful: a moving story and great acting, I loved it.",
        "This movie was terrible: a boring story and awful acting, I hated it.",
        "This movie was released in 1998.",
    ])  # fmt: skip
    assert good > 0.5 and bad < -0.5 and good > flat > bad
    assert flat == 0.0  # no sentiment word: VADER's compound is exactly neutral


def test_a_classifier_judge_needs_its_model_and_a_lexicon_none():
    with pytest.raises(ValidationError, match="independent_judge.model"):
        IndependentJudge(kind="classifier")
    with pytest.raises(ValidationError, match="independent_judge.model"):
        IndependentJudge(kind="lexicon", model={"asset": "tiny-random-llama"})


def test_a_classifier_judge_scores_the_positive_label_probability(tmp_path):
    """The hub path's code on a local classifier (random weights: plumbing only; a real
    sentiment classifier needs the hub, which these tests cannot reach)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from harness.models import load_tokenizer, resolve_model
    from harness.suite.spec import ModelSpec

    tiny = resolve_model(ModelSpec(asset="tiny-random-llama"))
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny.location, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, dtype=torch.float32
    )
    tokenizer = load_tokenizer(tiny)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = {"kind": "classifier", "model": {"path": str(tmp_path)}}
    judge = load_judge(IndependentJudge.model_validate(config), "cpu", batch_size=2)
    scores = judge.score(["a fine film", "a dull film that goes on", "ok"])
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    wrong = IndependentJudge.model_validate({**config, "positive_label": "good"})
    with pytest.raises(ValueError, match="labels are \\['negative', 'positive'\\]"):
        load_judge(wrong, "cpu", batch_size=2)
