"""Provenance recorded with every run: code, packages, device, model and data identity."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes",
    "sentence-transformers", "optuna", "duckdb", "ftbench",
)  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parent.parent


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return {
            "device": torch.cuda.get_device_name(),
            "cuda": torch.version.cuda,
            "compute_capability": f"{major}.{minor}",
        }
    return {
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "cuda": None,
        "compute_capability": None,
    }


def collect(
    model_provenance: dict[str, Any], dataset_fingerprint: str | None, seed: int, config_hash: str
) -> dict[str, Any]:
    return {
        **git_state(),
        "python": platform.python_version(),
        "packages": package_versions(),
        **device_info(),
        "model_id": model_provenance.get("model_id"),
        # hub models: the commit that was loaded (what reproduces the run), and the revision
        # the suite asked for (a branch such as `main` moves; None for assets and local paths)
        "model_revision": model_provenance.get("model_revision"),
        "model_revision_requested": model_provenance.get("model_revision_requested"),
        "model_source": model_provenance.get("source"),
        "model_file_sha256": model_provenance.get("model_file_sha256"),
        "dataset_fingerprint": dataset_fingerprint,
        "seed": seed,
        "config_hash": config_hash,
    }
