"""The plan: one answer to "what runs, under which run_id" for ls, plan, lock, run and the API;
--only; suites found by their `name:`; the leaderboard `show` prints is the dashboard's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import suite_dict
from test_alignment import tiny_alignment_suite
from test_memory import budget_suite

import harness
from harness import store
from harness.cli import main as cli
from harness.plan.plan import make_plan
from harness.suite.suite_file import SuiteError

ROOT = Path(__file__).resolve().parent.parent


def _ls_ids(capsys, *args: str) -> list[str]:
    capsys.readouterr()
    assert cli(["ls", *args]) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]


def _plan_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert cli(["plan", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _db_ids(db: Path) -> set[str]:
    with store.connect(db, read_only=True) as con:
        return {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}


def test_ls_plan_lock_and_run_agree_on_every_run_id(tmp_path, monkeypatch, capsys):
    """A suite whose LoRA cell the budget adjusts (on this tiny model LoRA's dropout copies cost
    more than full fine-tuning's optimizer state): ls, plan --format json, lock and the runs
    `ftbench run` records (found by the suite's name, not its file name) agree."""
    data = budget_suite("adjust", 0.015)
    data.update(name="agree", seeds=[0])
    data["methods"] = {"full": {}, "lora": {}}
    data["grid"]["methods"] = ["full", "lora"]
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "budget_file.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)

    listed = _ls_ids(capsys, "agree")
    planned = _plan_json(capsys, "agree")
    ids = [r["run_id"] for r in planned["runs"]]
    assert listed == ids and len(ids) == 2
    adjusted = [r for r in planned["runs"] if r["adjustments"]]
    assert [r["method"] for r in adjusted] == ["lora"]
    assert all(r["run_id"] != r["requested_run_id"] for r in adjusted)  # adjusted = a new run
    assert all(
        r["verdict"] == "fits" and r["predicted_bytes"] <= r["limit_bytes"] for r in adjusted
    )

    assert cli(["lock", "agree"]) == 0
    lock = json.loads((tmp_path / "suites" / "budget_file.lock.json").read_text())
    assert [r["run_id"] for r in lock["runs"]] == ids
    assert cli(["run", "agree"]) == 0
    assert _db_ids(tmp_path / "results" / "ftbench.duckdb") == set(ids)
    # The lock runs exactly what it locked: nothing new.
    assert cli(["run", "suites/budget_file.lock.json"]) == 0
    assert "0 run now, 2 already done" in capsys.readouterr().out

    # `show` by file and by name read the suite's name: the same leaderboard.
    capsys.readouterr()
    assert cli(["show", "suites/budget_file.yaml"]) == 0
    by_file = capsys.readouterr().out
    assert cli(["show", "agree"]) == 0
    assert capsys.readouterr().out == by_file and "Leaderboard: suite agree" in by_file


def test_the_t4_benchmark_plans_the_same_run_ids_everywhere(tmp_path, capsys):
    """peft_t4 (hub models: nothing runs offline) for two models, where the budget adjusts or
    refuses cells: ls, plan --format json and the rows a run records are the same runs."""
    suite, only = str(ROOT / "suites" / "peft_t4.yaml"), "model=llama-2-7b"
    listed = _ls_ids(capsys, suite, "--only", only)
    planned = _plan_json(capsys, suite, "--only", only)
    assert [r["run_id"] for r in planned["runs"]] == listed
    verdicts = {r["verdict"] for r in planned["runs"]}
    assert verdicts == {"fits", "over_budget", "unknown"}
    # unknown: only the PEFT types the estimator cannot trace, with the reason printed
    unknown = [r for r in planned["runs"] if r["verdict"] == "unknown"]
    assert all(r["reason"].startswith("not estimated") for r in unknown)
    assert {r["method"] for r in unknown} == {"loha", "lokr", "boft"}
    assert any(r["adjustments"] for r in planned["runs"])
    assert all(r["unavailable"] for r in planned["runs"])  # the hub is unreachable here

    db = tmp_path / "t4.duckdb"
    report = harness.run(suite, only=only, results=tmp_path, db=db)
    assert report.statuses == {"skipped": len(listed)}  # recorded with the reason, not run
    assert _db_ids(db) == set(listed)


def test_only_keeps_cells_and_brings_their_stages(write_suite):
    path = write_suite(tiny_alignment_suite(["start", "dpo", "kto"]))
    plan = make_plan(path, only="method=dpo", availability=False)
    assert [r.spec.method_key for r in plan.runs] == ["reward_model", "judge", "dpo"]
    assert [r.stage for r in plan.runs] == [True, True, False]
    everything = {s.run_id for s in make_plan(path, availability=False).specs}
    assert {s.run_id for s in plan.specs} <= everything


@pytest.mark.parametrize(
    "only,message",
    [
        ("method=lorra", "--only method=lorra matches no run; did you mean 'lora'"),
        ("seed=7", "--only seed=7 matches no run"),
        ("rank=8", "KEY one of method, model, dataset, seed"),
        ("method", "expected KEY=VALUE"),
        ("method=lora,method=ia3", "method given twice"),
    ],
)
def test_only_errors_name_the_fix(only, message, write_suite):
    with pytest.raises(SuiteError, match=message):
        make_plan(write_suite(suite_dict()), only=only, availability=False)


def test_only_selects_by_method_model_dataset_and_seed(write_suite):
    data = suite_dict(seeds=[0, 1], methods={"lora": {}, "r4": {"method": "lora"}, "ia3": {}})
    data["grid"]["methods"] = ["lora", "r4", "ia3"]
    path = write_suite(data)
    labels = [s.label for s in make_plan(path, only="method=ia3|r4,seed=1").specs]
    assert labels == ["r4·tiny·rt·s1", "ia3·tiny·rt·s1"]
    # A registry name selects every entry of that method.
    assert len(make_plan(path, only="method=lora", availability=False).specs) == 4


def test_a_suite_is_found_by_its_name(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "a.yaml").write_text(yaml.safe_dump(suite_dict(name="gpu_a")))
    monkeypatch.chdir(tmp_path)
    assert harness.load_suite("gpu_a").name == "gpu_a"
    assert make_plan("gpu_a", availability=False).source == Path("suites/a.yaml")
    with pytest.raises(SuiteError, match="no suite named 'gpu_b'.*did you mean 'gpu_a'"):
        make_plan("gpu_b")


def test_show_and_the_dashboard_rank_the_same_way(tmp_path, monkeypatch, capsys):
    """A cell with two diverged seeds (invalid, ranked last despite its mean), a cell with a
    flagged run: `ftbench show` and the dashboard's page give the same order, numbers, flags."""
    from test_dashboard import open_page

    from dashboard.synthetic import result

    db = tmp_path / "same.duckdb"
    clean = {"issues": []}
    runs = [
        result(method="steady", seed=s, metrics={"accuracy": v}) for s, v in enumerate([0.7, 0.72])
    ]
    runs += [result(method="spiky", seed=0, metrics={"accuracy": 0.95})]
    runs += [result(method="spiky", seed=s, status="diverged", reason="nan") for s in (1, 2)]
    runs += [result(method="dirty", seed=s, metrics={"accuracy": 0.8}) for s in (0, 1)]
    for res in runs:  # complete provenance and clean data checks, but for one dirty tree
        res["train_info"]["data_checks"] = clean
        res["meta_info"]["packages"] = dict.fromkeys(store.schema.REQUIRED_PACKAGES, "1.0")
        res["meta_info"]["model_file_sha256"] = "f00d"
    runs[-1]["meta_info"]["git_dirty"] = True
    for res in runs:
        store.ingest(db, res)

    capsys.readouterr()
    assert cli(["--db", str(db), "show", "synthetic"]) == 0
    shown = capsys.readouterr().out
    rows = [line.split() for line in shown.splitlines() if line.split()[:1] in (["dirty"],
            ["steady"], ["spiky"])]  # fmt: skip
    page = open_page(db, "leaderboard", monkeypatch).dataframe[0].value
    assert [r[0] for r in rows] == page["entry"].tolist() == ["dirty", "steady", "spiky"]
    for row, (_, cell) in zip(rows, page.iterrows(), strict=True):
        flags = [t for t in row[1:] if t in ("⚑", "✗")]
        assert " ".join(flags) == cell["flags"]
        number = next(t for t in row[1:] if t[0].isdigit())
        assert number == f"{cell['mean']:.4f}"
    assert page["flags"].tolist() == ["⚑", "", "✗"]
    assert page["vs_leader"].tolist() == ["leader", "no CI", "invalid"]
    assert "1 of 2 runs flagged: dirty tree" in shown and "invalid: 2 seeds diverged" in shown
