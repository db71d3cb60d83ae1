"""SYNTHETIC result.json dicts, shaped like the worker's, for the load test and the dashboard tests.

The numbers mean nothing: they only exercise harness.store.ingest and the dashboard's queries.
Every run made here is tagged `notes.synthetic = true`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GIB = 2**30


def run_id_for(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def result(
    *,
    suite: str = "synthetic",
    method: str = "lora",
    model: str = "tiny",
    dataset: str = "rt",
    seed: int = 0,
    status: str = "ok",
    metrics: dict[str, float] | None = None,
    task: str = "sentiment",
    headline: str | None = None,
    params: dict[str, Any] | None = None,
    learning_rate: float = 2e-4,
    peak_mem_bytes: int | None = 2 * GIB,
    mem_kind: str = "cpu_peak_rss",
    train_s: float = 30.0,
    trainable_pct: float = 1.0,
    tokens_per_s: float | None = 150.0,
    curve_steps: int = 12,
    reason: str | None = None,
    traceback: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """One result dict as the worker writes it (harness.store.result.RunResult) (run_info / train_info / meta_info).

    metrics=None with status ok models an ok run that recorded no metrics; a non-ok status gets
    no metrics, curve or provenance unless given, like a run that crashed early.
    """
    run_id = run_id or run_id_for(suite, method, model, dataset, seed)
    headline = headline or ("accuracy" if task == "sentiment" else "perplexity")
    spec = {
        "suite": suite, "suite_version": 1, "method_key": method, "method": method.split("-")[0],
        "params": params if params is not None else {"r": 8, "alpha": 16.0},
        "model_key": model, "model": {"asset": model, "hub": None, "revision": "main", "path": None},
        "dataset_key": dataset,
        "dataset": {"source": "synthetic", "task": task, "metric": headline, "split_seed": 0,
                    "splits": {"train": 400, "validation": 100, "test": 200}},
        "training": {"max_steps": curve_steps, "batch_size": 8, "learning_rate": learning_rate,
                     "precision": "fp16", "timeout_s": 600},
        "seed": seed, "budget": {"profile": "t4", "gpu_mem_gb": None},
    }  # fmt: skip
    ran = status == "ok" or metrics is not None
    info: dict[str, Any] = {"status": status, "reason": reason, "traceback": traceback}
    if ran:
        info.update(
            curve=[
                {
                    "step": s,
                    "loss": 2.0 / s + 0.01 * seed,
                    "learning_rate": learning_rate,
                    "grad_norm": 1.0 / s,
                }
                for s in range(1, curve_steps + 1)
            ],  # fmt: skip
            timings={"load_s": 0.5, "train_s": train_s, "eval_s": 5.0, "total_s": train_s + 5.5},
            params={
                "trainable_params": int(1_000_000 * trainable_pct),
                "total_params": 100_000_000,
                "trainable_pct": trainable_pct,
            },
            memory=_memory(peak_mem_bytes, mem_kind),
            train_tokens=5000,
            tokens_per_s=tokens_per_s,
            speed=(
                {
                    "steady_tokens_per_s": tokens_per_s,
                    "steady_samples_per_s": tokens_per_s / 50,
                    "time_to_first_step_s": 3.0,
                    "step_s": [train_s / curve_steps] * curve_steps,
                }
                if tokens_per_s
                else None
            ),  # fmt: skip
            artifact_bytes=123_456,
            precision_effective="fp16" if mem_kind.startswith("cuda") else "fp32",
            notes={"synthetic": True},
        )
        if metrics is not None:
            info["metrics"] = {"test": metrics}
    meta = (
        {
            "git_commit": "0" * 40,
            "git_dirty": False,
            "python": "3.11",
            "packages": {"ftbench": "0.1.0"},
            "device": "cuda" if mem_kind.startswith("cuda") else "cpu",
            "cuda": None,
            "compute_capability": None,
            "model_id": f"synthetic/{model}",
            "model_revision": None,
            "model_source": "synthetic",
            "model_file_sha256": None,
            "dataset_fingerprint": "synthetic",
            "seed": seed,
            "config_hash": run_id,
        }  # fmt: skip
        if ran
        else {}
    )
    return {
        "run_id": run_id,
        "run_info": {
            "spec": spec,
            "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T00:01:00+00:00",
        },
        "train_info": info,
        "meta_info": meta,
    }


def _memory(peak: int | None, kind: str) -> dict[str, Any]:
    if peak is None:
        return {}
    memory: dict[str, Any] = {"peak_mem_bytes": peak, "peak_mem_kind": kind}
    if kind == "cuda_max_allocated":
        memory["cuda_max_allocated"] = peak
        memory["cuda_max_reserved"] = peak + GIB // 4
    return memory
