"""`make gpu-check` on CPU: its plan, report writer, time boxes, the kit's manifest, and the
calibration widening it applies to the harness's own runs (nothing here needs a GPU)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest

from harness.memory.accuracy import Pair
from harness.memory.calibration import Band, band_for, read_bands, widen_bands, write_bands

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    """A script of benchmarks/ as a module (they are not a package; they import each other)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it runs
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def check():
    return _module("gpu_check")


@pytest.fixture(scope="module")
def kit():
    return _module("gpu_kit")


def no_gpu(env: dict) -> dict:
    return {"has_cuda": False, "torch": "2.13.0+cpu"}


def test_without_a_gpu_the_check_lists_every_step_and_exits_0(check, tmp_path, capsys):
    args = ["--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--kit", str(tmp_path)]
    assert check.main(args, probe_fn=no_gpu) == 0
    out = capsys.readouterr().out
    steps = check.plan(check.Paths(tmp_path / "w", tmp_path / "o", tmp_path))
    names = [s.name for s in steps]
    assert names == ["kit", "models", "smoke", "memcheck", "memory", "calibrate", "overhead",
                     "alignment", "ray"]  # fmt: skip
    for i, s in enumerate(steps, 1):
        assert f"{i}. {s.name} ({s.box_s} s)" in out and " ".join(s.command) in out
    assert "no GPU" in out and "skipped: no kit" in out
    assert sum(s.box_s for s in steps) < check.PLAN_LIMIT_S
    assert not (tmp_path / "o" / "report.json").exists()  # nothing ran, no report


def test_the_checks_suites_are_valid_and_systems_only(check, tmp_path):
    from harness.suite.suite_file import Suite, expand

    paths = check.Paths(tmp_path / "w", tmp_path / "o", tmp_path / "kit")
    files = check.write_suites(paths)
    specs = {n: expand(Suite.model_validate(check._yaml().safe_load(f.read_text())))
             for n, f in files.items()}  # fmt: skip
    smoke = {s.method for s in specs["gpu_check_smoke_smollm2"]}
    assert smoke == {"full", "freeze", "lora", "ia3", "prompt", "prefix", "qlora"}
    assert {s.method for s in specs["gpu_check_smoke_tinyllama"]} == {"full", "lora", "qlora"}
    assert all(s.budget.profile == "t4" for s in specs["gpu_check_smoke_smollm2"])
    assert {s.method for s in specs["gpu_check_alignment"]} == {"dpo", "orpo", "ppo"}
    ray = check._yaml().safe_load(files["gpu_check_ray"].read_text())
    assert ray["executor"] == {"kind": "ray", "gpus_per_run": 0.5, "parallel": 2}
    assert len(specs["gpu_check_ray"]) == 2
    for runs in specs.values():
        assert all(str(paths.models) in s.model.path for s in runs)  # nothing from the hub


def test_the_memory_check_grid_has_checkpointing_and_the_7b_cell(tmp_path):
    from harness.suite.suite_file import Suite, expand

    bench = _module("memory_gpu")
    specs = [s for d in bench.suites(tmp_path, grid="check")
             for s in expand(Suite.model_validate(d))]  # fmt: skip
    assert len(specs) == len(bench.CHECK_GRID) == 12
    ckpt = {(s.model.architecture, s.method) for s in specs if s.training.gradient_checkpointing}
    assert ckpt == {("smollm2-135m", m) for m in ("full", "lora", "qlora")} | {
        ("tinyllama-1.1b", "lora")
    }
    (big,) = [s for s in specs if s.model.architecture == "llama-2-7b"]
    assert big.method == "qlora" and big.budget.over_budget == "adjust"
    assert big.training.grad_accum == 2 and big.training.max_length == 512
    assert all(not s.model.systems_only for s in specs)  # all from saved checkpoints


def _step(check, name, code, box_s=30, numbers=None):
    return check.Step(name, name, [sys.executable, "-c", code], box_s, numbers)


def test_the_report_is_rewritten_after_every_step_and_keeps_earlier_ones(check, tmp_path):
    out, numbers = tmp_path / "out", tmp_path / "first.json"
    first = _step(check, "first",
                  f"import json; json.dump({{'ratio_of_medians': 0.98}}, open({str(numbers)!r}, 'w'));"
                  "print('measured')", numbers=numbers)  # fmt: skip
    # The second step passes only if the report already holds the first step's result.
    second = _step(check, "second",
                   f"import json; d = json.load(open({str(out / 'report.json')!r}));"
                   "assert d['steps'][0]['status'] == 'ok', d['steps'][0];"
                   "assert d['steps'][0]['result'] == {'ratio_of_medians': 0.98};"
                   "assert d['steps'][1]['status'] == 'pending'")  # fmt: skip
    third = _step(check, "third", "import sys; print('boom'); sys.exit(3)")
    steps = [first, second, third]
    doc = check.execute(steps, dict(os.environ), {"gpu": "TestGPU", "commit": "abc"}, out)
    assert [s["status"] for s in doc["steps"]] == ["ok", "ok", "failed"], second.output_tail
    again = json.loads((out / "report.json").read_text())
    assert again["steps"][0]["result"] == {"ratio_of_medians": 0.98}
    assert (
        again["steps"][2]["reason"] == "exit code 3" and "boom" in again["steps"][2]["output_tail"]
    )
    md = (out / "report.md").read_text()
    assert "TestGPU" in md and "| third | failed |" in md and "measured" in md
    assert not list(out.glob(".*.tmp"))
    text = check.summary(again)
    assert "first" in text and "failed" in text and len(text.splitlines()) <= 25


def test_a_step_past_its_time_box_is_cut_off_with_what_it_printed(check, tmp_path):
    pid_file = tmp_path / "child.pid"
    # The step starts a child in a session of its own, as the harness's run processes are.
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)"
    )  # fmt: skip
    step = _step(check, "slow", code, box_s=3)
    t0 = time.perf_counter()
    check.run_step(step, dict(os.environ), echo=lambda line: None)
    assert time.perf_counter() - t0 < 20
    assert step.status == "timed_out" and "3 s time box" in step.reason
    assert "started" in step.output_tail and step.seconds >= 3
    child = int(pid_file.read_text())
    time.sleep(0.5)
    state = Path(f"/proc/{child}/stat")
    assert not state.exists() or state.read_text().split()[2] == "Z"  # killed, not left running


def test_a_step_needing_a_missing_module_is_skipped_with_the_reason(check):
    step = check.Step("ray", "x", [sys.executable, "-c", "pass"], 5, needs="no_such_module_xyz")
    check.run_step(step, dict(os.environ))
    assert step.status == "skipped" and "no_such_module_xyz" in step.reason


def test_the_kit_manifest_lists_its_files_and_enforces_the_limit(kit, tmp_path):
    folder = tmp_path / ".gpu-kit"
    (folder / "wheels").mkdir(parents=True)
    (folder / "tokenizer").mkdir()
    (folder / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"x" * 1000)
    (folder / "tokenizer" / "tokenizer.json").write_bytes(b"{}" * 100)
    doc = kit.write_manifest(folder, project=500, limit=10_000)
    assert [(f["path"], f["bytes"]) for f in doc["files"]] == [
        ("tokenizer/tokenizer.json", 200),
        ("wheels/a-1.0-py3-none-any.whl", 1000),
    ]
    assert doc["kit_bytes"] == 1200 and doc["total_bytes"] == 1700
    assert json.loads((folder / "manifest.json").read_text()) == doc
    again = kit.write_manifest(
        folder, project=500, limit=10_000
    )  # the manifest is not a file of it
    assert again["kit_bytes"] == 1200
    with pytest.raises(kit.KitTooLarge, match=r"over the 0 MiB that may travel"):
        kit.write_manifest(folder, project=500, limit=1500)
    assert kit.LIMIT_BYTES == 64 * 2**20


def test_the_kit_trims_bitsandbytes_and_installs_without_pip(kit, tmp_path):
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in (
            "bitsandbytes/__init__.py",
            "bitsandbytes/libbitsandbytes_cuda130.so",
            "bitsandbytes/libbitsandbytes_cuda121.so",
            "bitsandbytes/libbitsandbytes_cpu.so",
        ):
            z.writestr(name, "x")  # fmt: skip
    (tmp_path / "kit" / "wheels").mkdir(parents=True)
    trimmed = kit.trim_bitsandbytes(wheel, tmp_path / "kit" / "wheels")
    assert sorted(zipfile.ZipFile(trimmed).namelist()) == [
        "bitsandbytes/__init__.py",
        "bitsandbytes/libbitsandbytes_cpu.so",
        "bitsandbytes/libbitsandbytes_cuda130.so",
    ]
    assert kit.install(tmp_path / "kit", tmp_path / "site") == [trimmed.name]
    assert (tmp_path / "site" / "bitsandbytes" / "libbitsandbytes_cuda130.so").exists()
    with pytest.raises(SystemExit, match="make gpu-kit"):
        kit.install(tmp_path / "empty", tmp_path / "site")


H100 = {"default": Band(-0.03, 0.08, 0, "h100"), "lora": Band(-0.01, 0.06, 4, "h100"),
        "full": Band(-0.02, 0.05, 5, "h100")}  # fmt: skip


def _rows(key: str, measured: list[int]) -> list[Pair]:
    return [Pair(f"{key} {m}", key, 100, m) for m in measured]  # predicted 100, nothing exact


def test_bands_already_covering_95_percent_are_kept():
    rows = _rows("lora", [100, 103, 99]) + _rows("full", [104])
    bands, doc = widen_bands(H100, rows, "gpu")
    assert bands == H100 and doc["widened"] == {} and doc["coverage_before"] == 1.0


def test_widening_covers_every_row_per_family_and_checkpointing_never_narrower(tmp_path):
    # LoRA rows inside its band; checkpointed LoRA 10 % and 5 % under (outside LoRA's band,
    # which it falls back to); full 12 % over.
    rows = _rows("lora", [100, 103]) + _rows("lora+checkpointing", [90, 95]) + _rows("full", [112])
    bands, doc = widen_bands(H100, rows, "gpu")
    assert doc["coverage_before"] == pytest.approx(2 / 5) and doc["coverage_after"] == 1.0
    ckpt = bands["lora+checkpointing"]
    assert (ckpt.lower, ckpt.upper, ckpt.rows) == (pytest.approx(-0.10), 0.06, 2)
    assert bands["lora"] == H100["lora"]  # its rows were inside: unchanged
    assert (bands["full"].lower, bands["full"].upper) == (-0.02, pytest.approx(0.12))
    # default: the pooled p95 of each side (4 rows down to -10 %, 12 % up), never narrower
    assert bands["default"].lower == pytest.approx(-0.10)
    assert bands["default"].upper == pytest.approx(0.12)  # nearest-rank p95 of 5 rows: the max
    assert sorted(doc["widened"]) == ["default", "full", "lora+checkpointing"]
    for key, band in H100.items():  # never narrower than what it had
        assert bands[key].lower <= band.lower and bands[key].upper >= band.upper
    path = tmp_path / "calibration.json"
    write_bands(path, bands)
    assert read_bands(path)["lora+checkpointing"].lower == pytest.approx(-0.10)
    assert band_for("lora", path, checkpointing=True).lower == pytest.approx(-0.10)
    assert band_for("lora", path) == read_bands(path)["lora"]
    assert band_for("qlora", path, checkpointing=True) == read_bands(path)["default"]


def test_the_calibrate_step_widens_from_the_memory_steps_rows(check, tmp_path):
    bench = _module("memory_gpu")
    pairs = _rows("lora", [100, 101]) + _rows("qlora+checkpointing", [70, 75])  # 25-30 % under
    doc = bench.to_json(pairs, ["gpt2 full: status oom, no measured/predicted pair"], "TestGPU")
    assert doc["band_coverage"] == 0.5 and [r["in_band"] for r in doc["rows"]] == [1, 1, 0, 0]
    paths = check.Paths(tmp_path / "w", tmp_path / "o", tmp_path / "kit")
    check._dump(paths.step_json("memory"), doc)
    assert check.glue_calibrate(paths) == 0
    found = json.loads(paths.step_json("calibrate").read_text())
    assert found["coverage_before"] == 0.5 and found["coverage_after"] == 1.0
    assert "qlora+checkpointing" in found["widened"] and "lora" not in found["widened"]
    written = read_bands(paths.out / "calibration.json")
    assert written["qlora+checkpointing"].lower == pytest.approx(-0.30)
    assert "TestGPU" in written["qlora+checkpointing"].source
    line = check.headline("calibrate", found)
    assert "coverage 50 % -> 100 %" in line and "qlora+checkpointing" in line
