"""What running on Ray costs per run, and what one driver can ingest.

    python benchmarks/ray_overhead.py [--runs 6] [--ingest 200] [--out DIR]

1. Task overhead: the same tiny runs (the tiny random model, one seed each) through the local
   executor and through the Ray executor on a local Ray instance (one run at a time on both, so
   they do not compete for the CPUs). Overhead of a run = wall time from submitting it to having
   its result on the driver, minus the run's own time (train_info.timings.total_s: load, train,
   evaluate, save). The first run of each arm also starts the fork server that preloads torch
   (harness/run/launch.py); it is reported apart.
2. Driver ingest: store.ingest of a result shaped like a peft_t4 run's (a 500-step curve, test
   and validation metrics, provenance, memory) into a database already holding the runs before
   it, timed per run. This is the driver's serial work per finished run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent


def tiny_specs(folder: Path, runs: int) -> list:
    from harness.plan.plan import make_plan

    data = yaml.safe_load((ROOT / "tests" / "tiny_suite.yaml").read_text())
    data["seeds"] = list(range(runs))
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return make_plan(path).specs


def arm(executor, specs: list, results: Path) -> list[dict]:
    out = []
    for spec in specs:
        t0 = time.perf_counter()
        handle = executor.submit(spec, results / "runs" / spec.run_id)
        _, result = executor.wait_any([handle])
        wall = time.perf_counter() - t0
        if isinstance(result, Exception) or result.status != "ok":
            raise SystemExit(f"{spec.label}: {result}")
        own = result.train_info.timings.total_s
        out.append({"wall_s": wall, "own_s": own, "overhead_s": wall - own})
    return out


def ingest_times(count: int, folder: Path) -> list[float]:
    from dashboard import synthetic
    from harness import store
    from harness.store.result import RunResult

    db = folder / "ingest.duckdb"
    times = []
    for i in range(count):
        data = synthetic.result(
            method=f"m{i % 15}", seed=i, curve_steps=500, metrics={"accuracy": 0.5}
        )
        result = RunResult.model_validate(data)
        t0 = time.perf_counter()
        store.ingest(db, result)
        times.append(time.perf_counter() - t0)
    return times


def summary(rows: list[dict], key: str) -> str:
    rest = [r[key] for r in rows[1:]]
    return (
        f"first {rows[0][key]:.2f} s, then median {statistics.median(rest):.2f} s "
        f"(min {min(rest):.2f}, max {max(rest):.2f}; {len(rest)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="tiny runs per arm (default 6)")
    parser.add_argument("--ingest", type=int, default=200, help="results to ingest (default 200)")
    parser.add_argument("--out", help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="ray_overhead_"))
    folder.mkdir(parents=True, exist_ok=True)
    print("command: python benchmarks/ray_overhead.py " + " ".join(sys.argv[1:]))

    import ray

    from harness.run.executors import ExecutorConfig, build

    specs = tiny_specs(folder, args.runs)
    local = arm(build(ExecutorConfig()), specs, folder / "local")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    try:
        on_ray = arm(build(ExecutorConfig(kind="ray", parallel=1)), specs, folder / "ray")
    finally:
        ray.shutdown()
    print(f"local: run's own time {summary(local, 'own_s')}")
    print(f"local: overhead       {summary(local, 'overhead_s')}")
    print(f"ray:   run's own time {summary(on_ray, 'own_s')}")
    print(f"ray:   overhead       {summary(on_ray, 'overhead_s')}")
    extra = statistics.median(r["overhead_s"] for r in on_ray[1:]) - statistics.median(
        r["overhead_s"] for r in local[1:]
    )
    print(f"ray minus local, per run (medians after the first): {extra:+.2f} s")
    print(f"ray.init (a local instance, 2 CPUs): {startup:.2f} s once per command")
    times = ingest_times(args.ingest, folder)
    median = statistics.median(times)
    print(
        f"driver ingest per run (500-step curve, into a database of up to {args.ingest} runs): "
        f"median {median * 1000:.0f} ms, p90 {sorted(times)[int(0.9 * len(times))] * 1000:.0f} ms, "
        f"last {times[-1] * 1000:.0f} ms"
    )
    if not args.out:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
