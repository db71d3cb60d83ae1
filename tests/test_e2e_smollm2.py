"""End to end on the real SmolLM2-135M-Instruct (offline asset) and real movie reviews."""

from __future__ import annotations

import duckdb
import pytest
from helpers import suite_dict

from harness.plan.plan import make_plan
from harness.run.runner import run_plan
from harness.store import leaderboard

pytestmark = pytest.mark.slow


def test_micro_suite_on_smollm2_into_duckdb(tmp_path, write_suite):
    data = suite_dict(
        name="micro",
        training={
            "max_steps": 4,
            "batch_size": 4,
            "max_length": 96,
            "eval_batch_size": 8,
            "timeout_s": 600,
        },
        models={"smollm2": {"asset": "smollm2-135m-instruct"}},
        methods={"lora": {"params": {"r": 8, "alpha": 16.0}}},
    )
    data["datasets"]["rt"]["options"]["max_words"] = 30
    data["datasets"]["rt"]["splits"] = {"train": 16, "validation": 4, "test": 16}
    data["grid"]["models"] = ["smollm2"]
    path = write_suite(data)
    report = run_plan(make_plan(path), results_dir=tmp_path / "results")
    (result,) = report.executed
    info = result.train_info
    assert info.status == "ok", info.reason
    curve = [p["loss"] for p in info.curve]
    assert len(curve) == 4 and curve[-1] < curve[0], curve  # a real model learns the label format
    # SmolLM2-135M: 134.5M base params; LoRA r=8 on all linear layers is well under 1%.
    assert 130e6 < info.params.total_params < 140e6
    assert 0.1 < info.params.trainable_pct < 2.0
    meta = result.meta_info
    assert meta["model_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert len(meta["model_file_sha256"]) == 64 and "GGUF" in meta["model_source"]

    db = tmp_path / "results" / "ftbench.duckdb"
    board = leaderboard(db, "micro")
    row = board.iloc[0]
    assert row["method"] == "lora" and row["n"] == 1 and 0.0 <= row["mean"] <= 1.0
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT value FROM metrics WHERE name = 'accuracy'").fetchone()[0]
    assert stored == pytest.approx(info.metrics["test"]["accuracy"])
