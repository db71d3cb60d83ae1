"""Every shipped suite plans (`ftbench plan`, as a user would run it), and the smoke presets'
run_ids are pinned: a change to how a run_id is hashed would silently re-run every finished run
on resume, so it must show up here (update tests/golden_run_ids.json on purpose, with a note).

    UPDATE_GOLDEN=1 pytest tests/test_shipped.py -k golden   # rewrite the golden file
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.suite.suite_file import expand, load_suite

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "suites").rglob("*.yaml")) + sorted((ROOT / "suites").rglob("*.yml"))
SMOKE = [p for p in SHIPPED if p.stem.endswith("smoke")]
GOLDEN = Path(__file__).resolve().parent / "golden_run_ids.json"


def run_ids(path: Path) -> dict[str, str]:
    return {spec.label: spec.run_id for spec in expand(load_suite(path))}


def test_smoke_presets_keep_their_golden_run_ids():
    got = {str(p.relative_to(ROOT)): run_ids(p) for p in SMOKE}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert len(SMOKE) >= 5
    assert got == json.loads(GOLDEN.read_text())


def _slow_unless_smoke(path: Path):
    # A T4 suite plans hundreds of estimates (~1 min each suite on 2 CPU cores); smoke ones: s.
    marks = [] if path in SMOKE else [pytest.mark.slow]
    return pytest.param(path, id=str(path.relative_to(ROOT)), marks=marks)


@pytest.mark.parametrize("path", [_slow_unless_smoke(p) for p in SHIPPED])
def test_every_shipped_suite_plans(path, tmp_path, capsys):
    assert cli(["--results", str(tmp_path), "plan", "--format", "json", str(path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    planned = {run["requested_run_id"] for run in plan["runs"]}
    missing = [s.label for s in expand(load_suite(path)) if s.run_id not in planned]
    assert not missing, f"runs of {path.name} missing from its plan: {missing}"
    for run in plan["runs"]:  # a verdict for every run: a prediction, or the reason there is none
        assert run["verdict"] in ("fits", "over_budget", "unknown"), run
        assert run["predicted_bytes"] or run["reason"] or run["unavailable"], run
        if path.stem.startswith("rlhf"):  # every alignment method and stage is estimated
            assert run["verdict"] != "unknown", run
