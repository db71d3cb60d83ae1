"""The declared dependencies resolve for every supported Python, without installing anything.

`pip install --dry-run --python-version V --only-binary=:all:` picks wheels for another Python.
torch is replaced in that resolution by a stub wheel (torch-2.13.0+stub, no dependencies): the
index this runs against serves no separate metadata, so resolving the real torch downloads it and
its CUDA libraries (1.8 GB measured); that torch itself has wheels for V is checked with
`pip index versions`, which reads the index page only. The rest downloads ~0.5 GB per Python
without pip's cache (12 s measured), a few seconds with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYTHONS = ("3.12", "3.13")
NO_NETWORK = ("NewConnectionError", "Network is unreachable", "Temporary failure in name")


def _requirements() -> list[Requirement]:
    """[project.dependencies] and every extra a user installs (ftbench[all]); not dev."""
    extras = PYPROJECT["optional-dependencies"]
    lines = PYPROJECT["dependencies"] + [
        r for name, reqs in extras.items() if name not in ("all", "dev") for r in reqs
    ]
    return [Requirement(line) for line in lines]


def _stub_torch(folder: Path) -> Path:
    version = "2.13.0+stub"
    info = f"torch-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    wheel = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(text)}")
        z.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return wheel


def _pip(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode and any(s in done.stderr for s in NO_NETWORK):
        pytest.skip("the package index cannot be reached: " + done.stderr.strip().splitlines()[-1])
    return done


def test_requires_python_covers_the_notebook_pythons():
    allowed = SpecifierSet(PYPROJECT["requires-python"])
    assert all(v in allowed for v in ("3.11", *PYTHONS)) and "3.10" not in allowed


@pytest.mark.slow
@pytest.mark.parametrize("python", PYTHONS)
def test_the_dependency_set_resolves_for(python, tmp_path):
    torch = next(r for r in _requirements() if r.name == "torch")
    index = _pip("index", "versions", "torch", "--python-version", python, "--only-binary=:all:")
    assert index.returncode == 0, index.stderr
    line = next(x for x in index.stdout.splitlines() if x.startswith("Available versions:"))
    versions = [v.strip() for v in line.partition(":")[2].split(",")]
    assert any(torch.specifier.contains(v) for v in versions), (python, torch, versions)

    (tmp_path / "wheels").mkdir()
    _stub_torch(tmp_path / "wheels")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("\n".join(str(r) for r in _requirements()) + "\n")
    report = tmp_path / "report.json"
    done = _pip(
        "install", "--dry-run", "--ignore-installed", "--quiet", "--python-version", python,
        "--only-binary=:all:", "--target", str(tmp_path / "target"), "--report", str(report),
        "--find-links", str(tmp_path / "wheels"), "-r", str(reqs),
        "-c", str(ROOT / "constraints.txt"),
    )  # fmt: skip
    assert done.returncode == 0, f"does not resolve for Python {python}:\n{done.stderr[-3000:]}"
    chosen = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert chosen["torch"] == "2.13.0+stub"  # the stub stood in: no CUDA wheel was fetched
    tags = {
        i["download_info"]["url"].rsplit("/", 1)[-1]
        for i in json.loads(report.read_text())["install"]
    }
    for req in _requirements():
        assert req.specifier.contains(chosen[req.name.lower()], prereleases=True), (req, chosen)
    # Compiled wheels were picked for this Python, not the running one.
    cp = "cp" + python.replace(".", "")
    assert any(f"-{cp}-" in t for t in tags if t.startswith("numpy-")), sorted(tags)


def test_the_wheel_ships_every_data_file_and_the_suites(tmp_path):
    """A `pip install` (no checkout) has what the checkout has: the data files next to the code
    (calibration bands, the architecture catalogue) and the suites (`ftbench run smoke`)."""
    import shutil

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ there
    for name in tracked:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    done = _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src))
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("ftbench-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = [
        n for n in tracked if n.startswith(("harness/", "dashboard/")) and not n.endswith(".py")
    ]
    assert data and [n for n in data if n not in shipped] == []
    suites = [n for n in tracked if n.startswith("suites/") and n.endswith(".yaml")]
    version = wheel.name.split("-")[1]
    assert [
        n for n in suites if f"ftbench-{version}.data/data/share/ftbench/{n}" not in shipped
    ] == []
