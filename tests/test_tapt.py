"""Task-adaptive pre-training: one shared upstream stage per (model, dataset, TAPT config), run
once, reused, and the weights every cell that asks for it starts from (tiny model)."""

from __future__ import annotations

import pytest
from helpers import grid_specs, suite_dict

from harness.plan.plan import make_plan
from harness.run.runner import run_plan
from harness.suite.suite_file import SuiteError

TAPT = {"steps": 3, "batch_size": 2, "learning_rate": 1.0e-3, "max_length": 32}


def tapt_suite(**tapt) -> dict:
    """lora and full from the same TAPT stage, lora without it, on the tiny model."""
    config = {**TAPT, **tapt}
    return suite_dict(
        name="tapt_tiny",
        methods={
            "lora": {},
            "lora_tapt": {"method": "lora", "tapt": config},
            "full_tapt": {"method": "full", "tapt": config},
        },
        grid={
            "methods": ["lora", "lora_tapt", "full_tapt"],
            "models": ["tiny"],
            "datasets": ["rt"],
        },  # fmt: skip
    )


@pytest.fixture(scope="module")
def tapt_run(tmp_path_factory):
    import yaml

    tmp = tmp_path_factory.mktemp("tapt")
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(tapt_suite()))
    plan = make_plan(path)
    report = run_plan(plan, results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    return plan, report, tmp


def test_one_stage_is_planned_first_and_shared_by_the_cells_that_ask(tapt_run):
    plan, report, _ = tapt_run
    specs = {s.method_key: s for s in plan.specs}
    order = [s.method_key for s in plan.specs]
    assert order == ["lora", "tapt", "lora_tapt", "full_tapt"]  # once, before its first cell
    stage = specs["tapt"]
    assert specs["lora_tapt"].upstream == {"tapt": stage.run_id}
    assert specs["full_tapt"].upstream == {"tapt": stage.run_id}
    assert specs["lora"].upstream is None and "tapt" not in specs["lora"].resolved
    # the stage trains the cell task's train texts: same records, labels never read
    assert stage.dataset.model_dump(exclude={"task"}) == specs["lora"].dataset.model_dump(
        exclude={"task"}
    )
    assert (stage.dataset.task, stage.training.max_steps, stage.seed) == ("tapt_sentiment", 3, 0)
    results = {r.spec["method_key"]: r for r in report.executed}
    assert {k: r.status for k, r in results.items()} == dict.fromkeys(specs, "ok")
    info = results["tapt"].train_info
    assert info.notes["tapt_texts"] == info.split_sizes["train"] == 8
    assert info.notes["tapt_text_field"] == "text"  # the review, not its label
    assert info.metrics["test"]["eval_loss"] > 0 and info.metrics["test"]["perplexity"] > 1
    assert info.notes["test_eval_loss_before"] != info.metrics["test"]["eval_loss"]
    # the stage's forgetting, and each cell's measured from where the stage left the model
    stage_test = info.metrics["test"]
    assert stage_test["forgetting"] == pytest.approx(
        stage_test["general_loss"] - stage_test["general_loss_before"]
    )
    assert stage_test["forgetting"] != 0  # TAPT trained the LM
    for key in ("lora_tapt", "full_tapt"):
        cell = results[key].train_info.metrics["test"]
        assert cell["general_loss_before"] == pytest.approx(stage_test["general_loss"], rel=1e-5)
    assert results["lora"].train_info.metrics["test"]["general_loss_before"] == pytest.approx(
        stage_test["general_loss_before"], rel=1e-5
    )  # the suite's model, as the stage started from
    assert info.curve and info.train_tokens > 0
    fingerprints = {r.meta_info["dataset_fingerprint"] for r in results.values()}
    assert len(fingerprints) == 1  # the stage's splits are the cells' exactly
    for key in ("lora_tapt", "full_tapt"):
        assert results[key].train_info.notes["start_weights"] == f"tapt stage {stage.run_id}"
        assert results[key].train_info.notes["upstream"] == {"tapt": stage.run_id}


def test_a_second_run_reuses_the_finished_stage(tapt_run):
    plan, _, tmp = tapt_run
    again = run_plan(plan, results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    assert not again.executed
    assert "tapt" in {r.spec["method_key"] for r in again.skipped}


def test_a_cell_starts_from_the_stages_weights_not_the_suites_model(tapt_run):
    """The SFT backend's prepare loads the finished stage's model for a cell linked to it."""
    import torch
    from safetensors.torch import load_file

    from harness.backends import RunContext, backend_for, method_for
    from harness.backends.sft.tapt import stage_folder
    from harness.models import load_causal_lm, resolve_model

    plan, _, tmp = tapt_run
    cell = next(s for s in plan.specs if s.method_key == "full_tapt")
    stage_weights = load_file(str(stage_folder(tmp / "results", cell.upstream["tapt"])
                                  / "model.safetensors"))  # fmt: skip
    method = method_for(cell)
    run = RunContext(cell, tmp / "results/runs" / cell.run_id, "cpu", method,
                     method.Params.model_validate(cell.params))  # fmt: skip
    prepared = backend_for(cell).prepare(run)
    loaded = dict(prepared.model.named_parameters())
    original = dict(load_causal_lm(resolve_model(cell.model)).named_parameters())
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(loaded[name].detach(), stage_weights[name])
    assert not torch.equal(original[name].detach(), stage_weights[name])  # TAPT moved it


def test_tapt_config_errors_are_suite_errors_naming_the_field():
    with pytest.raises(SuiteError, match=r"methods\.lora_tapt\.tapt\.stepz"):
        grid_specs(tapt_suite(stepz=3))
    bad = tapt_suite()
    bad["methods"]["lora_tapt"]["tapt"] = {"batch_size": 2}
    with pytest.raises(SuiteError, match=r"methods\.lora_tapt\.tapt\.steps: Field required"):
        grid_specs(bad)


def test_tapt_on_a_method_without_stage_support_is_refused():
    from test_alignment import tiny_alignment_suite

    data = tiny_alignment_suite(["dpo"])
    data["methods"]["dpo"]["tapt"] = {"steps": 2}
    with pytest.raises(SuiteError, match=r"methods\.dpo\.tapt: .*does not start from a TAPT"):
        grid_specs(data)


def test_the_stage_gets_a_memory_verdict(write_suite):
    """`ftbench plan` answers for the stage as for the SFT run it resembles: a full-weight TAPT
    stage (optimizer state for every weight) needs more than the LoRA cell it feeds."""
    data = tapt_suite()
    data["budget"] = {"profile": "t4"}
    plan = make_plan(write_suite(data), availability=False, estimates=True)
    rows = {r["method"]: r for r in (run.to_json() for run in plan.runs)}
    assert rows["tapt"]["stage"] and rows["tapt"]["verdict"] == "fits"
    assert rows["tapt"]["parts"]["optimizer"] > rows["lora_tapt"]["parts"]["optimizer"]
