"""Seeding and strict determinism for one run, and a record of what was set.

Two steps, because CUDA reads CUBLAS_WORKSPACE_CONFIG when it creates its first cuBLAS handle:
`configure_env` runs in the worker before torch is imported; `apply` runs at the start of
training. What was set is recorded in result.json (meta_info.determinism).
"""

from __future__ import annotations

import os
from typing import Any

CUBLAS_WORKSPACE = ":4096:8"  # what torch asks for with deterministic cuBLAS (CUDA >= 10.2)


def configure_env(spec: dict[str, Any]) -> None:
    """Set the environment strict mode needs; call before torch is imported (takes the spec JSON)."""
    if (spec.get("determinism") or {}).get("strict"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def apply(seed: int, settings: Any) -> dict[str, Any]:
    """Seed Python, NumPy and torch; in strict mode also pin threads and deterministic kernels.

    `settings` is a suite.Determinism. The Trainer is given the same seed and data_seed (train.py),
    so the data order is fixed too.
    """
    import torch
    from transformers import set_seed

    set_seed(seed)  # random, numpy, torch (CPU and every CUDA device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)  # CPU reductions are summed in a per-thread order
    if settings.strict:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return record(seed, settings)


def record(seed: int, settings: Any) -> dict[str, Any]:
    """What is in effect now (call it after training too: a library could have changed it)."""
    import torch

    return {
        "seed": seed,
        "seeded": ["python", "numpy", "torch", "trainer_seed", "data_seed"],
        "strict": settings.strict,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "num_threads": torch.get_num_threads(),
        "num_threads_pinned": settings.threads is not None,
    }
