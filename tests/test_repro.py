"""Determinism, `ftbench repro` and suite locks, with real run subprocesses on the tiny model.

The data comes from a JSON-lines file (test plug-in `jsonl_file`), so a test can change an input
for real and watch the repro check and the lock catch it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from helpers import load_specs, suite_dict

from harness.backends.data import MovieReviewOptions, MovieReviews
from harness.cli import main as cli
from harness.plan.lock import LockError, load_locked
from harness.plan.plan import make_plan
from harness.runs.runner import run_plan
from harness.store.result import read_result
from harness.suite.suite_file import SuiteError, load_suite


def _write_records(path: Path, flip_labels: bool = False) -> None:
    reviews = MovieReviews().load(MovieReviewOptions(subset="rotten_tomatoes", max_words=20))
    # both classes (the source lists one label first): a one-class label column is a suite error
    records = [r for r in reviews if r["label"] == "positive"][:30]
    records += [r for r in reviews if r["label"] == "negative"][:30]
    flip = {"positive": "negative", "negative": "positive"}
    with open(path, "w", encoding="utf-8") as out:
        for r in records:
            label = flip[r["label"]] if flip_labels else r["label"]
            out.write(json.dumps({"text": r["text"], "label": label}) + "\n")


def _suite(tmp: Path, data_file: Path, **overrides) -> Path:
    data = suite_dict(determinism={"strict": True}, **overrides)
    data["datasets"] = {
        "file": {
            "source": "jsonl_file",
            "options": {"path": str(data_file)},
            "task": "sentiment",
            "splits": {"train": 8, "validation": 4, "test": 8},
        }
    }
    data["grid"]["datasets"] = ["file"]
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module", autouse=True)
def _testdata_plugin():
    # Visible here and in the run subprocesses, which inherit the environment.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FTBENCH_PLUGINS", os.environ["FTBENCH_PLUGINS"] + ",ftbench_testdata")
        yield


@pytest.fixture(scope="module")
def strict_pair(tmp_path_factory, _testdata_plugin):
    """One strict-mode CPU run, then `ftbench repro` of it: two real subprocess runs."""
    tmp = tmp_path_factory.mktemp("repro")
    data_file = tmp / "reviews.jsonl"
    _write_records(data_file)
    path = _suite(tmp, data_file)
    results = tmp / "results"
    report = run_plan(make_plan(path), results_dir=results)
    (original,) = report.executed
    assert original.status == "ok", original.train_info.reason
    code = cli(["--results", str(results), "repro", original.run_id])
    return {"tmp": tmp, "path": path, "results": results, "original": original, "code": code,
            "data_file": data_file}  # fmt: skip


def _repro_dirs(results: Path, run_id: str) -> list[Path]:
    return sorted((results / "repro" / run_id).iterdir())


def _checks(db: Path) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT * FROM repro_checks ORDER BY checked_at, repro_dir").df()
    return frame.to_dict("records")


def test_strict_cpu_runs_are_bit_identical(strict_pair):
    original = strict_pair["original"]
    (repro_dir,) = _repro_dirs(strict_pair["results"], original.run_id)
    repro = read_result(repro_dir)
    a, b = original.train_info, repro.train_info
    assert a.status == b.status == "ok"
    assert len(a.curve) == 2 and a.curve == b.curve  # every logged float, exactly
    assert a.metrics == b.metrics
    # What was set is recorded with the run.
    det = original.meta_info["determinism"]
    assert det["strict"] and det["deterministic_algorithms"] and det["num_threads"] == 1
    assert det["cublas_workspace_config"] == ":4096:8" and det["seed"] == 0
    # ... and the repro check says so, exactly, and is stored.
    assert strict_pair["code"] == 0
    check = json.loads((repro_dir / "repro.json").read_text())
    assert check["verdict"] == "pass" and check["tolerance"]["mode"] == "exact"
    assert set(check["metric_deltas"]) >= {"test/accuracy", "test/eval_loss", "curve/loss"}
    assert all(d["ok"] for d in check["metric_deltas"].values())
    stored = _checks(strict_pair["results"] / "ftbench.duckdb")[0]
    assert stored["original_run_id"] == original.run_id and stored["verdict"] == "pass"
    # A repro run is not a leaderboard run.
    with duckdb.connect(str(strict_pair["results"] / "ftbench.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_data_checks_are_recorded_and_stored(strict_pair):
    checks = strict_pair["original"].train_info.data_checks
    assert checks["overlap"] == {"validation": 0, "test": 0}
    assert checks["eos_trained_share"] == 1.0  # TRL appends EOS and it is in the trained labels
    assert checks["pad_token_set"] and checks["pad_is_eos"] is False
    assert 0.0 <= checks["truncated_share"] <= 1.0 and checks["issues"] == []
    db = strict_pair["results"] / "ftbench.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT overlap_test, eos_trained_share, pad_is_eos FROM data_checks"
        ).fetchone()
    assert row == (0, 1.0, False)


def test_a_changed_input_fails_the_repro_and_names_it(strict_pair, capsys):
    capsys.readouterr()
    _write_records(strict_pair["data_file"], flip_labels=True)  # same texts, other labels
    try:
        code = cli([
            "--results", str(strict_pair["results"]), "repro", "--suite",
            str(strict_pair["path"]), "--sample", "1",
        ])  # fmt: skip
    finally:
        _write_records(strict_pair["data_file"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "input changed: dataset_fingerprint" in out
    assert "curve/loss" in out  # the labels are what the model trains on
    failed = _checks(strict_pair["results"] / "ftbench.duckdb")[-1]
    assert failed["verdict"] == "fail"
    failures = json.loads(failed["failures"])
    assert any("dataset_fingerprint" in f for f in failures)
    assert "repro: 0 of 1 passed" in out


def test_lock_runs_the_locked_specs_and_refuses_changed_inputs(tmp_path, capsys):
    from harness.models import MODEL_ASSETS

    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_ASSETS.get("tiny-random-llama").resolve().location, model_dir)
    data_file = tmp_path / "reviews.jsonl"
    _write_records(data_file)
    path = _suite(tmp_path, data_file, models={"tiny": {"path": str(model_dir)}})
    lock_path = tmp_path / "suite.lock.json"
    assert cli(["lock", str(path), "-o", str(lock_path)]) == 0
    lock = json.loads(lock_path.read_text())
    assert lock["suite"]["training"]["warmup_ratio"] == 0.0  # defaults are filled in
    assert lock["inputs"]["models"]["tiny"]["weights_sha256"]
    assert lock["inputs"]["datasets"]["file"]["fingerprint"]
    _, locked_specs = load_locked(lock_path)
    assert [s.run_id for s in locked_specs] == [s.run_id for s in load_specs(path)[1]]

    _write_records(data_file, flip_labels=True)
    weights = model_dir / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF  # one byte of one weight
    weights.write_bytes(bytes(blob))
    capsys.readouterr()
    assert cli(["--results", str(tmp_path / "r"), "run", str(lock_path)]) == 2
    err = capsys.readouterr().err
    assert str(lock_path) in err and "nothing runs" in err
    assert "datasets.file.fingerprint: locked" in err
    assert "models.tiny.model_file_sha256" in err and "models.tiny.weights_sha256" in err
    assert not (tmp_path / "r").exists()
    with pytest.raises(LockError, match="re-create the lock"):
        load_locked(lock_path)


def test_determinism_block_is_strict_and_tolerances_do_not_change_run_ids(tmp_path, write_suite):
    def run_id(**det):
        return load_specs(write_suite(suite_dict(determinism=det)))[1][0].run_id

    no_block = load_specs(write_suite(suite_dict()))[1][0].run_id
    assert run_id(strict=True) == run_id(strict=True, rel_tol=0.5, abs_tol=1.0e-3)
    assert run_id(strict=True) != run_id(strict=False) != no_block
    with pytest.raises(SuiteError, match=r"determinism\.strict"):
        load_suite(write_suite(suite_dict(determinism={"strict": "yes"})))
    with pytest.raises(SuiteError, match=r"determinism\.seed: unknown key"):
        load_suite(write_suite(suite_dict(determinism={"seed": 1})))
    with pytest.raises(SuiteError, match=r"determinism\.rel_tol"):
        load_suite(write_suite(suite_dict(determinism={"rel_tol": "0.02"})))  # a quoted string


def test_repro_of_an_unknown_run_says_what_to_do(tmp_path, capsys):
    assert cli(["--results", str(tmp_path), "repro", "0123456789abcdef"]) == 2
    assert "no result.json for run '0123456789abcdef'" in capsys.readouterr().err
    assert cli(["--results", str(tmp_path), "repro", "--suite", "tiny"]) == 2
    assert "no results database" in capsys.readouterr().err


# --- the tolerance mode and the environment report (no run: result dicts as written) ----------


def _result_dict(accuracy: float, losses: list[float], **meta) -> dict:
    curve = [{"step": i + 1, "loss": v, "grad_norm": 1.0 + i} for i, v in enumerate(losses)]
    meta = {
        "model_file_sha256": "abc", "dataset_fingerprint": "fp", "seed": 0, "config_hash": "c",
        "git_commit": "1111111", "device": "cpu", "packages": {"torch": "2.13.0"}, **meta,
    }  # fmt: skip
    info = {"status": "ok", "metrics": {"test": {"accuracy": accuracy}}, "curve": curve}
    return {"train_info": info, "meta_info": meta}


def test_tolerance_is_exact_only_for_strict_runs_on_cpu():
    from helpers import grid_specs

    from harness.runs.repro import tolerance

    cpu, gpu = {"device": "cpu"}, {"device": "cuda:0"}
    det = {"strict": True, "rel_tol": 0.05, "abs_tol": 0.001}
    (strict,) = grid_specs(suite_dict(determinism=det))
    (loose,) = grid_specs(suite_dict(determinism={**det, "strict": False}))
    relative = {"mode": "relative", "rel_tol": 0.05, "abs_tol": 0.001}
    assert tolerance(strict, cpu, cpu) == {"mode": "exact", "rel_tol": 0.0, "abs_tol": 0.0}
    assert tolerance(strict, cpu, gpu) == relative  # one of the two on a GPU: not bit-exact
    assert tolerance(loose, cpu, cpu) == relative
    (default,) = grid_specs(suite_dict())
    assert tolerance(default, gpu, gpu) == {"mode": "relative", "rel_tol": 0.02, "abs_tol": 0.0}


def test_relative_mode_allows_rel_tol_and_abs_tol_and_no_more():
    from harness.runs.repro import compare

    tol = {"mode": "relative", "rel_tol": 0.02, "abs_tol": 0.0}
    original = _result_dict(0.500, [2.0, 1.0])
    inside = compare(original, _result_dict(0.509, [2.039, 0.981]), tol)  # 1.8 %, 1.95 %, 1.9 %
    assert inside["verdict"] == "pass", inside["failures"]
    assert inside["metric_deltas"]["test/accuracy"]["rel_delta"] == pytest.approx(0.018)
    # grad norms are noisy: only the loss of the curve is compared in relative mode
    assert set(inside["metric_deltas"]) == {"test/accuracy", "curve/loss"}
    outside = compare(original, _result_dict(0.511, [2.0, 1.021]), tol)  # 2.2 %, 2.1 %
    assert outside["verdict"] == "fail"
    assert outside["failures"][0] == (
        "test/accuracy: 0.5 -> 0.511 (delta +0.011, rel 2.200%; allowed: rel_tol 0.02, abs_tol 0)"
    )
    assert outside["failures"][1].startswith("curve/loss: 1 of 2 points differ, first at step 2")
    # near zero a relative tolerance allows nothing; abs_tol is what allows a small gap there
    zero = _result_dict(0.0, [2.0, 1.0])
    assert compare(zero, _result_dict(0.0005, [2.0, 1.0]), tol)["verdict"] == "fail"
    with_abs = {**tol, "abs_tol": 0.001}
    assert compare(zero, _result_dict(0.0005, [2.0, 1.0]), with_abs)["verdict"] == "pass"
    assert compare(zero, _result_dict(0.0015, [2.0, 1.0]), with_abs)["verdict"] == "fail"
    exact = {"mode": "exact", "rel_tol": 0.0, "abs_tol": 0.0}
    assert compare(original, _result_dict(0.5000001, [2.0, 1.0]), exact)["verdict"] == "fail"


def test_environment_differences_are_reported_and_do_not_fail_the_check():
    from harness.runs.repro import compare, format_check

    tol = {"mode": "relative", "rel_tol": 0.02, "abs_tol": 0.0}
    moved = _result_dict(
        0.505, [2.0, 1.0], git_commit="2222222", device="cuda:0",
        packages={"torch": "2.14.0"},
    )  # fmt: skip
    check = compare(_result_dict(0.5, [2.0, 1.0]), moved, tol)
    assert check["verdict"] == "pass" and check["failures"] == []
    assert check["env_differences"] == {
        "device": {"original": "cpu", "repro": "cuda:0"},
        "git_commit": {"original": "1111111", "repro": "2222222"},
        "packages.torch": {"original": "2.13.0", "repro": "2.14.0"},
    }
    text = format_check({**check, "original_run_id": "r1", "label": "x", "repro_dir": "d"})
    assert "PASS r1 x [tolerance: rel_tol 0.02, abs_tol 0]" in text
    assert "  1 metrics, loss curve (2 points) match" in text
    assert "  environment differences:\n    device: 'cpu' -> 'cuda:0'\n" in text
    assert "    packages.torch: '2.13.0' -> '2.14.0'" in text
    # an input is not the environment: a changed seed fails the check, named
    reseeded = compare(_result_dict(0.5, [2.0, 1.0]), _result_dict(0.5, [2.0, 1.0], seed=1), tol)
    assert reseeded["verdict"] == "fail"
    assert reseeded["failures"] == ["input changed: seed 0 -> 1"]
    assert reseeded["env_differences"] == {}
