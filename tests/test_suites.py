from __future__ import annotations

from pathlib import Path

import pytest
from helpers import load_specs, suite_dict

from harness.cli import main as cli
from harness.suite.suite_file import SuiteError, expand, load_suite

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "suites").rglob("*.yaml")) + sorted((ROOT / "suites").rglob("*.yml"))


def test_there_are_shipped_suites():
    names = {p.stem for p in SHIPPED}
    assert {"smoke", "peft_t4"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_suite_validates(path):
    specs = expand(load_suite(path))
    assert specs, f"{path} expands to no runs"
    assert len({s.run_id for s in specs}) == len(specs), "run_ids must be unique"


def test_grid_is_the_product_minus_exclusions(write_suite):
    data = suite_dict(
        seeds=[0, 1, 2],
        methods={"lora": {}, "full": {}, "ia3": {}},
        datasets={
            "a": suite_dict()["datasets"]["rt"],
            "b": {**suite_dict()["datasets"]["rt"], "split_seed": 1},
        },
        grid={
            "methods": ["lora", "full", "ia3"],
            "models": ["tiny"],
            "datasets": ["a", "b"],
            "exclude": [{"method": "full", "dataset": "b"}],
        },
    )
    _, specs = load_specs(write_suite(data))
    cells = {(s.method_key, s.dataset_key) for s in specs}
    assert len(cells) == 3 * 2 - 1
    assert ("full", "b") not in cells
    assert len(specs) == 5 * 3


def test_run_id_is_stable_and_changes_only_with_the_run(write_suite):
    data = suite_dict(
        methods={"lora": {}, "full": {}},
        grid={"methods": ["lora", "full"], "models": ["tiny"], "datasets": ["rt"]},
    )
    first = {s.label: s.run_id for s in load_specs(write_suite(data, "a.yaml"))[1]}
    again = {s.label: s.run_id for s in load_specs(write_suite(data, "b.yaml"))[1]}
    assert first == again
    # Reordering the grid changes nothing; changing lora's rank changes only lora's run.
    data["grid"]["methods"] = ["full", "lora"]
    data["methods"]["lora"] = {"params": {"r": 4}}
    changed = {s.label: s.run_id for s in load_specs(write_suite(data, "c.yaml"))[1]}
    assert changed["full·tiny·rt·s0"] == first["full·tiny·rt·s0"]
    assert changed["lora·tiny·rt·s0"] != first["lora·tiny·rt·s0"]


def test_defaults_are_filled_and_overrides_apply(write_suite):
    data = suite_dict(
        methods={"lora": {"params": {"r": 4}, "training": {"learning_rate": 1.0e-3}}},
        grid={
            "methods": ["lora"], "models": ["tiny"], "datasets": ["rt"],
            "overrides": [{"when": {"method": "lora", "dataset": "rt"}, "params": {"alpha": 8.0}}],
        },
    )  # fmt: skip
    (spec,) = load_specs(write_suite(data))[1]
    assert spec.params["r"] == 4 and spec.params["alpha"] == 8.0 and spec.params["dropout"] == 0.05
    assert spec.training.learning_rate == 1.0e-3
    assert spec.training.batch_size == 2  # from the suite defaults


BAD_CASES = {
    "unknown key": (
        lambda d: d["training"].update(learnig_rate=1.0e-4),
        ["training.learnig_rate", "unknown key"],
    ),
    "unknown method": (
        lambda d: (d["methods"].update(lorra={}), d["grid"].update(methods=["lorra"])),
        ["methods.lorra", "did you mean 'lora'"],
    ),
    "string for a float": (
        lambda d: d["training"].update(learning_rate="1e-4"),
        ["training.learning_rate", "write it with a dot"],
    ),
    "empty grid": (
        lambda d: d["grid"].update(exclude=[{"method": "lora"}]),
        ["grid", "empty"],
    ),
    "grid names an undeclared model": (
        lambda d: d["grid"].update(models=["tinny"]),
        ["grid.models", "did you mean 'tiny'"],
    ),
    "unknown model asset": (
        lambda d: d["models"].update(tiny={"asset": "smollm2-135m"}),
        ["unknown model asset", "smollm2-135m-instruct"],
    ),
    "bad method param": (
        lambda d: d["methods"].update(lora={"params": {"rank": 8}}),
        ["methods.lora.params.rank", "unknown key"],
    ),
    "bf16 on a T4": (
        lambda d: (d.update(budget={"profile": "t4"}), d["training"].update(precision="bf16")),
        ["training.precision", "T4 has no bf16"],
    ),
    "metric the task lacks": (
        lambda d: d["datasets"]["rt"].update(metric="perplexity"),
        ["perplexity", "accuracy"],
    ),
    "method of another backend": (
        lambda d: (d["methods"].update(dpo={}), d["grid"]["methods"].append("dpo")),
        ["method 'dpo'", "cannot train task 'sentiment'", "lora", "grid.exclude"],
    ),
    "unknown architecture": (
        lambda d: d["models"]["tiny"].update(architecture="llama-7b"),
        ["architecture 'llama-7b'", "llama-2-7b"],
    ),
    "adjust needs a valid policy": (
        lambda d: d.update(budget={"profile": "t4", "over_budget": "shrink"}),
        ["budget.over_budget", "skip", "adjust"],
    ),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_bad_suites_get_one_clear_error(case, write_suite):
    mutate, expected = BAD_CASES[case]
    data = suite_dict()
    mutate(data)
    path = write_suite(data)
    with pytest.raises(SuiteError) as err:
        load_specs(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_invalid_yaml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(broken)
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "missing.yaml")


def test_validate_command_exit_codes(write_suite, capsys):
    good = write_suite(suite_dict(), "good.yaml")
    bad_data = suite_dict()
    bad_data["training"]["batch_size"] = "eight"
    bad = write_suite(bad_data, "bad.yaml")
    assert cli(["validate", str(good)]) == 0
    assert cli(["validate", str(good), str(bad)]) == 1
    assert "training.batch_size" in capsys.readouterr().err


def test_expand_rejects_nothing_valid(write_suite):
    suite = load_suite(write_suite(suite_dict()))
    assert [s.method for s in expand(suite)] == ["lora"]
