"""Data checks (harness/backends/checks.py) and the provenance gate (store.run_issues, leaderboard flags)."""

from __future__ import annotations

import pytest

from harness import store
from harness.backends import checks
from harness.show.leaderboard import format_leaderboard


def test_overlap_detector_finds_a_planted_duplicate():
    splits = {
        "train": [
            {"text": "a fine film", "label": "positive"},
            {"text": "dull", "label": "negative"},
        ],
        "validation": [{"text": "Dull ", "label": "negative"}],
        "test": [
            {"text": "a fine film", "label": "negative"},
            {"text": "new", "label": "positive"},
        ],
    }
    found = checks.split_overlap(splits, "text")
    assert found["overlap"] == {"validation": 0, "test": 1}
    assert found["near_overlap"] == {"validation": 1, "test": 1}  # case and spaces ignored
    assert checks.issues(found) == ["1 test inputs also in train"]


def test_truncation_share_on_known_lengths():
    assert checks.truncation_share([10, 20, 30, 40], 25) == 0.5
    assert checks.truncation_share([25, 25], 25) == 0.0  # exactly max_length fits
    assert checks.truncation_share([], 25) is None


def test_eos_check_reads_the_trained_labels():
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from harness.models import load_tokenizer, resolve_model
    from harness.suite.spec import ModelSpec

    tok = load_tokenizer(resolve_model(ModelSpec(asset="tiny-random-llama")))
    eos = tok.eos_token_id
    examples = [
        {"prompt": "Is it good?", "completion": "positive"},
        {"prompt": "Is it bad? " * 40, "completion": "negative"},  # too long for max_length 32
    ]
    prepared = [
        {"input_ids": [5, 6, 7, eos], "labels": [-100, -100, 7, eos]},
        {"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]},  # its EOS was cut off
    ]
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    found = checks.example_checks(tok, examples, [False, True], prepared, collator, 32)
    assert found["eos_trained_share"] == 0.5
    assert found["truncated_share"] == 0.5 and found["input_shortened_share"] == 0.5
    assert found["max_tokens"] > 32 and found["dropped_examples"] == 0
    tok_checks = checks.tokenizer_checks(tok)
    assert tok_checks["pad_token_set"] and not tok_checks["pad_is_eos"]
    assert checks.issues({**found, **tok_checks}) == ["EOS trained in only 50% of examples"]


COMPLETE = {
    "git_commit": "abc123", "git_dirty": False, "python": "3.11.9",
    "packages": {"torch": "2.13.0", "transformers": "5.23.0", "peft": "0.21.2", "trl": "1.12.0",
                 "datasets": "5.2.0"},
    "device": "cpu", "model_id": "m", "model_revision": None, "model_file_sha256": "f00d",
    "dataset_fingerprint": "beef", "seed": 0, "config_hash": "c0ffee",
}  # fmt: skip
CLEAN_DATA = {"overlap": {"validation": 0, "test": 0}, "issues": []}


def _result(run_id, seed, meta, data_checks=CLEAN_DATA):
    spec = {
        "suite": "s", "suite_version": 1, "method_key": "lora", "method": "lora", "model_key": "m",
        "dataset_key": "d", "dataset": {"task": "sentiment", "metric": "accuracy"}, "seed": seed,
    }  # fmt: skip
    info = {"status": "ok", "metrics": {"test": {"accuracy": 0.5}}, "data_checks": data_checks}
    return {"run_id": run_id, "run_info": {"spec": spec}, "train_info": info, "meta_info": meta}


@pytest.mark.parametrize(
    ("meta", "data_checks", "issue"),
    [
        ({**COMPLETE, "git_dirty": True}, CLEAN_DATA, "dirty tree"),
        ({**COMPLETE, "git_commit": None}, CLEAN_DATA, "no git commit"),
        ({**COMPLETE, "dataset_fingerprint": None}, CLEAN_DATA, "no dataset fingerprint"),
        ({**COMPLETE, "model_file_sha256": None}, CLEAN_DATA, "no model revision or file hash"),
        ({**COMPLETE, "packages": {"torch": "2.13.0"}}, CLEAN_DATA, "package versions missing"),
        ({**COMPLETE, "config_hash": None}, CLEAN_DATA, "no config hash"),
        ({}, CLEAN_DATA, "no provenance"),
        (COMPLETE, None, "no data checks"),
        (COMPLETE, {"issues": ["1 test inputs also in train"]}, "1 test inputs also in train"),
    ],
)
def test_provenance_gate_flags_incomplete_rows(tmp_path, meta, data_checks, issue):
    db = tmp_path / "t.duckdb"
    store.ingest(db, _result("clean", 0, COMPLETE))
    store.ingest(db, _result("flagged", 1, meta, data_checks))
    runs = store.run_issues(db, "s").set_index("run_id")
    assert runs.loc["clean", "provenance_ok"] and runs.loc["clean", "data_ok"]
    bad = runs.loc["flagged"]
    assert issue in [*bad["provenance_issues"], *bad["data_issues"]]
    assert not (bad["provenance_ok"] and bad["data_ok"])
    board = store.leaderboard(db, "s")
    assert board.loc[0, "flagged"] == 1 and issue in board.loc[0, "issues"]
    assert "lora ⚑" in format_leaderboard(board, "s") and f"1 of 2 runs flagged: {issue}" in (
        format_leaderboard(board, "s")
    )


def test_a_clean_row_is_not_flagged(tmp_path):
    db = tmp_path / "t.duckdb"
    store.ingest(db, _result("clean", 0, COMPLETE))
    board = store.leaderboard(db, "s")
    assert board.loc[0, "flagged"] == 0
    assert "⚑" not in format_leaderboard(board, "s").split("\n\n")[1]
