"""Task scoring checked against the model's own loss, and the QA task end to end on the tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import suite_dict

from harness.backends.sft.methods import METHODS, MethodContext
from harness.backends.sft.tasks.prompting import score_completions, shared_prefix
from harness.models import load_tokenizer, resolve_model
from harness.run.lifecycle import execute
from harness.suite.spec import ModelSpec
from harness.suite.suite_file import Suite, expand
from harness.suite.tasks import TASKS

PAIRS = [
    ("The movie was", " great fun."),
    ("A question: why?", " Because it is long enough to matter."),
]
# Prompts that start alike, as a chat template makes them: scoring computes the shared tokens
# once and reuses their keys and values (prompting.shared_prefix).
SHARED = [
    ("You are a critic. Review: the movie was", " great fun."),
    ("You are a critic. Review: a question, why?", " Because it is long enough to matter."),
    ("You are a critic. Review: dull", " indeed"),
]


@pytest.fixture(scope="module")
def tiny():
    resolved = resolve_model(ModelSpec(asset="tiny-random-llama"))
    return resolved, load_tokenizer(resolved)


def _hf_completion_nll(model, tokenizer, prompt, completion):
    """Summed NLL of the completion (+EOS) from the model's own labelled forward pass."""
    prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids = tokenizer(prompt + completion + tokenizer.eos_token, add_special_tokens=False)[
        "input_ids"
    ]
    labels = torch.tensor([[-100] * prompt_len + ids[prompt_len:]])
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=labels).loss
    return loss.item() * (len(ids) - prompt_len), len(ids) - prompt_len


@pytest.mark.parametrize("pairs", [PAIRS, SHARED], ids=["distinct", "shared-prefix"])
@pytest.mark.parametrize(
    "method,params",
    [
        ("zero_shot", {}),
        ("lora", {}),
        ("prompt", {"num_virtual_tokens": 4, "init": "random"}),
        ("prefix", {"num_virtual_tokens": 4}),
    ],
)
def test_completion_scores_match_the_models_own_loss(method, params, pairs, tiny):
    """Batched, padded scoring == HF's labelled loss per example (also with virtual tokens)."""
    resolved, tokenizer = tiny
    impl = METHODS.get(method)
    setup = impl.setup(
        MethodContext(resolved, tokenizer, "cpu"), impl.Params.model_validate(params)
    )
    model = setup.model
    if setup.peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, setup.peft_config)
    model.eval()
    if pairs is SHARED and method != "prompt":
        encoded = [
            (len(tokenizer(p)["input_ids"]), tokenizer(p + c)["input_ids"]) for p, c in pairs
        ]
        assert shared_prefix(encoded) > 3  # the cached path is the one checked
    scores = score_completions(model, tokenizer, pairs, batch_size=2)
    for (prompt, completion), score in zip(pairs, scores, strict=True):
        nll, n = _hf_completion_nll(model, tokenizer, prompt, completion)
        assert score.n_tokens == n
        assert score.nll == pytest.approx(nll, rel=1e-4)


def test_qa_task_reports_loss_and_perplexity(tmp_path):
    data = suite_dict(
        datasets={
            "qa": {
                "source": "chatterbot_qa",
                "task": "qa",
                "splits": {"train": 8, "validation": 4, "test": 8},
            }
        },
    )
    data["grid"]["datasets"] = ["qa"]
    (spec,) = expand(Suite.model_validate(data))
    metrics = execute(spec, tmp_path).result.train_info.metrics["test"]
    assert set(metrics) == {
        "eval_loss", "perplexity", "general_loss_before", "general_loss", "forgetting"
    }  # fmt: skip
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    # A random 512-token model is about as unsure as uniform: perplexity near the vocab size.
    assert 50 < metrics["perplexity"] < 2000
    assert TASKS.get("qa").primary_metric == "perplexity"


def test_qa_context_follows_the_question_within_the_prompt_budget(tiny):
    """An optional `context` (Dolly's reference passage) goes after the question, cut so that
    question and context keep to half of max_length; without it the prompt is unchanged."""
    _, tokenizer = tiny
    qa = TASKS.get("qa")
    record = {"question": "Who wrote it?", "answer": "Ann."}
    plain = qa.to_example(record, tokenizer, 64)
    assert qa.to_example({**record, "context": ""}, tokenizer, 64) == plain
    passage = "The book was written by Ann in 1901 " * 20
    with_context = qa.to_example({**record, "context": passage}, tokenizer, 64)
    assert "Who wrote it?\n\nThe book was written by Ann" in with_context["prompt"]
    assert with_context["completion"] == plain["completion"]
    from harness.backends.sft.tasks.prompting import truncate_tokens

    room = 32 - len(tokenizer("Who wrote it?", add_special_tokens=False)["input_ids"])
    kept = truncate_tokens(tokenizer, passage, room)
    assert f"Who wrote it?\n\n{kept}" in with_context["prompt"] and len(kept) < len(passage)
