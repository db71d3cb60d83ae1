"""Harness overhead: one SFT run through the harness and through a bare PyTorch + PEFT loop.

    python benchmarks/overhead.py [SUITE] [--only method=lora] [--repeats 3] [--steps N] [--out DIR]

Both arms train the same spec (default: the lora cell of suites/smoke.yaml; --steps N for a
longer steady state) on the same micro-batches in the same order, each in a process of its own,
alternating A/B then B/A so drift in the machine's speed cancels out, on CUDA when present.
Prints each arm's steady-state tokens/s (after the warm-up steps, as harness/run/speed.py defines it)
with the ratio harness / bare, the median of the step-by-step ratios (the same batch in both arms,
so one noisy step moves it little), and the harness run's fixed cost: everything in its process's
wall time that is not a training step (start-up, loading, evaluation, saving).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BARE = Path(__file__).resolve().parent / "bare_loop.py"


def harness_arm(spec, folder: Path) -> dict:
    from harness.run.runner import LocalSubprocessExecutor

    t0 = time.perf_counter()
    result = LocalSubprocessExecutor(poll_s=0.05).run(spec, folder)
    wall = time.perf_counter() - t0
    info = result.train_info
    if info.status != "ok" or not info.speed:
        raise SystemExit(f"harness run {info.status}: {info.reason}")
    steps = sum(info.speed["step_s"])
    return {
        "steady_tokens_per_s": info.speed["steady_tokens_per_s"],
        "step_s": info.speed["step_s"],
        "step_tokens": info.speed["step_tokens"],
        "wall_s": wall,
        "steps_s": steps,
        "fixed_s": wall - steps,
        "first_step_s": info.speed["time_to_first_step_s"],
        **{k: getattr(info.timings, k) for k in ("load_s", "train_s", "eval_s", "total_s")},
    }


def bare_arm(spec, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(spec.model_dump_json())
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(BARE), str(folder / "spec.json"), str(folder / "out.json")],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = json.loads((folder / "out.json").read_text())
    return {"steady_tokens_per_s": out["steady_tokens_per_s"], "wall_s": time.perf_counter() - t0,
            "step_s": out["step_s"], "step_tokens": out["step_tokens"],
            "first_step_s": out["time_to_first_step_s"], "load_s": out["load_s"]}  # fmt: skip


def step_ratios(harness: dict, bare: dict) -> list[float]:
    """Bare seconds / harness seconds for each steady-state step (the same batch in both)."""
    from harness.run.speed import WARMUP_STEPS

    pairs = list(zip(harness["step_s"], bare["step_s"], strict=True))
    return [b / h for h, b in pairs[min(WARMUP_STEPS, len(pairs) - 1) :]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default="suites/smoke.yaml")
    parser.add_argument("--only", default="method=lora", help="the one cell to time (--only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, help="optimizer steps per arm (default: the spec's)")
    parser.add_argument("--out", type=Path, default=Path("results/bench-overhead"))
    args = parser.parse_args(argv)

    from harness.models.offline import configure_offline_mode

    configure_offline_mode()
    from harness.plan.plan import make_plan

    runs = [r for r in make_plan(args.suite, only=args.only).runs if not r.stage]
    if len(runs) != 1 or runs[0].preset:
        raise SystemExit(
            f"--only {args.only} must pick one runnable cell and seed; got {len(runs)}"
        )
    spec = runs[0].spec
    if args.steps:
        spec = spec.model_copy(
            update={"training": spec.training.model_copy(update={"max_steps": args.steps})}
        )
    shutil.rmtree(args.out, ignore_errors=True)
    arms = {"harness": harness_arm, "bare": bare_arm}
    found: dict[str, list[dict]] = {"harness": [], "bare": []}
    print(f"{spec.label}: {spec.training.max_steps} steps of {spec.training.batch_size} x "
          f"{spec.training.max_length}, {args.repeats} repeats, alternating", flush=True)  # fmt: skip
    for i in range(args.repeats):
        order = ["harness", "bare"] if i % 2 == 0 else ["bare", "harness"]
        for arm in order:
            found[arm].append(arms[arm](spec, args.out / arm / str(i)))
            print(f"  repeat {i} {arm:8s} {found[arm][-1]['steady_tokens_per_s']:8.1f} tokens/s "
                  f"(process {found[arm][-1]['wall_s']:.1f} s)", flush=True)  # fmt: skip

    def median(arm: str, key: str) -> float:
        return statistics.median(r[key] for r in found[arm])

    harness, bare = median("harness", "steady_tokens_per_s"), median("bare", "steady_tokens_per_s")
    pairs = [h["steady_tokens_per_s"] / b["steady_tokens_per_s"]
             for h, b in zip(found["harness"], found["bare"], strict=True)]  # fmt: skip
    same_batches = all(h["step_tokens"] == b["step_tokens"]
                       for h, b in zip(found["harness"], found["bare"], strict=True))  # fmt: skip
    per_step = [r for h, b in zip(found["harness"], found["bare"], strict=True)
                for r in step_ratios(h, b)]  # fmt: skip
    wall, fixed = median("harness", "wall_s"), median("harness", "fixed_s")
    summary = {
        "spec": spec.label,
        "device": "cuda" if _cuda() else "cpu",
        "steady_tokens_per_s": {"harness": harness, "bare": bare},
        "ratio_of_medians": harness / bare,
        "ratio_per_pair": pairs,
        "ratio_median_step": statistics.median(per_step),
        "same_batches": same_batches,
        "harness_fixed_s": fixed,
        "harness_wall_s": wall,
        "runs": found,
    }
    (args.out / "overhead.json").write_text(json.dumps(summary, indent=2))
    print(f"\nsteady-state tokens/s (median of {args.repeats}; warm-up steps excluded):")
    print(f"  harness {harness:9.1f}\n  bare    {bare:9.1f}\n  ratio   {harness / bare:9.3f} "
          f"(per pair: {', '.join(f'{p:.3f}' for p in pairs)})\n"
          f"  step by step {statistics.median(per_step):.3f} (median of {len(per_step)} steady "
          f"steps, bare s / harness s; same batches in both arms: {'yes' if same_batches else 'NO'})")  # fmt: skip
    print(f"harness run: {wall:.1f} s in its process, of which {wall - fixed:.1f} s training steps "
          f"and {fixed:.1f} s fixed cost ({fixed / wall:.0%}): load {median('harness', 'load_s'):.1f} s, "
          f"eval {median('harness', 'eval_s'):.1f} s, time to first step "
          f"{median('harness', 'first_step_s'):.1f} s (bare: {median('bare', 'first_step_s'):.1f} s)")  # fmt: skip
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
