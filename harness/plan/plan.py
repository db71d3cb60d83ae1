"""The plan: a suite (or a lock file), optionally narrowed by --only, as it will run.

One function decides, once, how every run of a suite will run: the grid's specs, each fitted to
the suite's memory budget (a verdict, and under `over_budget: adjust` the adjusted spec), each
preceded by the upstream stages it starts from (linked by the stages' final run_ids), and whether
its model and data can be had here. `ls`, `lock`, `plan`, `run`, `tune`, `repro` and the Python
API all go through it, so they agree on every run_id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import backend_for
from harness.backends.data import dataset_unavailable
from harness.memory.estimate import GB
from harness.models import ModelUnavailableError, resolve_model
from harness.plan.budget import BudgetPlanner, Fitted
from harness.plan.lock import load_locked
from harness.suite.registry import did_you_mean
from harness.suite.spec import RunSpec
from harness.suite.suite_file import Suite, SuiteError, expand, load_suite, locate

ONLY_KEYS = ("method", "model", "dataset", "seed")


class NothingRunsHere(Exception):
    """No run of the suite can have its model or dataset here: said before any memory estimate
    (planning a T4 suite estimates hundreds of runs), for the commands that would run them."""

    def __init__(self, source: Path, runs: int, reasons: list[str]) -> None:
        super().__init__(f"{runs} of {runs} runs of {source} cannot run here (nothing runs):")
        self.reasons = reasons

    def lines(self) -> list[str]:
        return [str(self), *(f"  - {reason}" for reason in self.reasons)]


@dataclass(frozen=True)
class Only:
    """`--only method=lora|ia3,seed=0`: the grid cells to keep (their stages come with them)."""

    wanted: tuple[tuple[str, frozenset[str]], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> Only:
        if not text or not text.strip():
            return cls()
        wanted: dict[str, frozenset[str]] = {}
        for clause in text.split(","):
            key, sep, values = clause.strip().partition("=")
            key = key.strip()
            if not sep or key not in ONLY_KEYS or not values.strip():
                raise SuiteError(
                    f"--only {clause.strip()!r}: expected KEY=VALUE[|VALUE...] with KEY one of "
                    f"{', '.join(ONLY_KEYS)} (e.g. --only method=lora|ia3,seed=0)"
                )
            if key in wanted:
                raise SuiteError(f"--only: {key} given twice; join its values with |")
            wanted[key] = frozenset(v.strip() for v in values.split("|") if v.strip())
        return cls(tuple(sorted(wanted.items())))

    def __bool__(self) -> bool:
        return bool(self.wanted)

    @staticmethod
    def values(spec: RunSpec) -> dict[str, set[str]]:
        return {
            "method": {spec.method_key, spec.method},
            "model": {spec.model_key},
            "dataset": {spec.dataset_key},
            "seed": {str(spec.seed)},
        }

    def matches(self, spec: RunSpec) -> bool:
        have = self.values(spec)
        return all(have[key] & values for key, values in self.wanted)

    def check(self, specs: list[RunSpec], source: Path) -> None:
        """Every value must name something in the suite: a typo is an error, not an empty run."""
        for key, values in self.wanted:
            known = sorted({v for s in specs for v in self.values(s)[key]})
            for value in sorted(values - set(known)):
                raise SuiteError(
                    f"{source}: --only {key}={value} matches no run{did_you_mean(value, known)} "
                    f"(its {key}s: {', '.join(known)})"
                )


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: the K-th of N deterministic slices of a suite's grid runs, to run a suite on
    several machines and merge the databases (`ftbench merge`). The grid runs, sorted by run_id,
    are dealt round-robin, so the slices differ in size by one run at most and every machine that
    plans the same suite (or lock file) deals the same slices. The upstream stages a run starts
    from come with it: a stage two slices need runs in both (same run_id; merge keeps one)."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        k, sep, n = text.strip().partition("/")
        if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise SuiteError(
                f"--shard {text!r}: expected K/N with 1 <= K <= N (e.g. --shard 2/4 runs the "
                "second of four slices)"
            )
        return cls(int(k), int(n))

    def __bool__(self) -> bool:
        return self.count > 1

    def select(self, specs: list[RunSpec]) -> list[RunSpec]:
        """The specs of this slice, in their original order."""
        ids = sorted({s.run_id for s in specs})
        mine = set(ids[self.index - 1 :: self.count])
        return [s for s in specs if s.run_id in mine]


@dataclass
class PlannedRun:
    spec: RunSpec  # as it will run: adjusted to the budget, linked to its stages
    requested: RunSpec  # as the suite asked for it
    fitted: Fitted
    stage: bool = False  # an upstream stage another run starts from, not a grid cell
    unavailable: str | None = None  # why its model or data cannot be had here

    @property
    def over_budget(self) -> bool:
        return self.fitted.over_budget

    @property
    def adjustments(self) -> list[str]:
        return self.fitted.adjustments

    @property
    def preset(self) -> tuple[str, str] | None:
        """(status, reason) to record instead of running it, when it must not run."""
        if self.unavailable:
            return "skipped", self.unavailable
        if self.over_budget:
            return "over_budget", self.fitted.reason
        return None

    def to_json(self) -> dict[str, Any]:
        spec, fitted = self.spec, self.fitted
        estimate = fitted.estimate
        return {
            "run_id": spec.run_id,
            "label": spec.label,
            "cell": spec.cell,
            "method": spec.method_key,
            "model": spec.model_key,
            "dataset": spec.dataset_key,
            "seed": spec.seed,
            "stage": self.stage,
            "upstream": spec.upstream or {},
            "requested_run_id": self.requested.run_id,
            "predicted_bytes": fitted.verdict.predicted_bytes,
            # The calibration band (harness/memory/calibration.py); the verdict uses upper_bytes.
            "lower_bytes": fitted.verdict.lower_bytes,
            "upper_bytes": fitted.verdict.upper_bytes,
            "margin_bytes": fitted.verdict.margin_bytes,
            "band": fitted.verdict.band,
            "parts": estimate.parts if estimate else None,
            "limit_bytes": fitted.verdict.limit_bytes,
            "verdict": {True: "fits", False: "over_budget", None: "unknown"}[fitted.verdict.fits],
            "reason": fitted.verdict.reason,
            "adjustments": fitted.adjustments,
            "unavailable": self.unavailable,
        }


@dataclass
class Plan:
    suite: Suite
    source: Path  # the suite or lock file
    runs: list[PlannedRun] = field(default_factory=list)  # upstream stages first
    locked: bool = False

    @property
    def specs(self) -> list[RunSpec]:
        return [r.spec for r in self.runs]

    def subset(self, runs: list[PlannedRun]) -> Plan:
        return Plan(self.suite, self.source, runs, self.locked)

    def check_availability(self) -> dict[str, str]:
        """Mark the runs whose model or dataset cannot be had here; run_id -> reason."""
        found = unavailable_runs(self.specs)
        for run in self.runs:
            run.unavailable = found.get(run.spec.run_id)
        return found

    def to_json(self) -> dict[str, Any]:
        budget = self.suite.budget
        return {
            "suite": self.suite.name,
            "source": str(self.source),
            "budget": {
                "profile": budget.profile,
                "limit_bytes": budget.limit_bytes,
                "over_budget": budget.over_budget or "skip",
            },
            "runs": [r.to_json() for r in self.runs],
        }


class Planner:
    """Turns specs into planned runs: each fitted to its budget once, its stages planned the same
    way and linked to it by their final run_ids. Keeps the budget verdicts it has taken."""

    def __init__(self, adjust: bool = True, estimate_without_budget: bool = False) -> None:
        self.budget = BudgetPlanner(adjust, estimate_without_budget)

    def plan(self, spec: RunSpec, stage: bool = False) -> list[PlannedRun]:
        """`spec` as it will run, preceded by the stages it starts from (recursively)."""

        fitted = self.budget.fit(spec)
        out: list[PlannedRun] = []
        links: dict[str, str] = {}
        for role, upstream in backend_for(fitted.spec).upstream(fitted.spec).items():
            planned = self.plan(upstream, stage=True)
            links[role] = planned[-1].spec.run_id
            out += planned
        final = fitted.spec.model_copy(update={"upstream": links or None})
        out.append(PlannedRun(final, spec, fitted, stage))
        return out

    def verdict(self, spec: RunSpec, stage: bool = False) -> PlannedRun:
        """A locked or stored spec: a budget verdict, never a change."""
        return PlannedRun(spec, spec, self.budget.fit(spec), stage)


def make_plan(
    source: str | Path,
    *,
    only: Only | str | None = None,
    shard: Shard | str | None = None,
    availability: bool = True,
    estimates: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    require_runnable: bool = False,
) -> Plan:
    """The plan of a suite file, a suite name (its `name:`) or a lock file.

    `only` keeps the matching grid cells (and their stages), `shard` one slice of those (see
    Shard); `availability` checks that models and datasets can be had here (it may convert an
    offline asset into the cache once);
    `estimates` estimates memory even for runs without a budget (for `ftbench plan`);
    `require_runnable` raises NothingRunsHere, before estimating anything, when no grid run can
    have its model and dataset here (for `run` and `tune`).
    """
    only = only if isinstance(only, Only) else Only.parse(only)
    shard = shard if isinstance(shard, Shard) else Shard.parse(shard)
    path = locate(source)
    if path.suffix == ".json":
        if overrides:
            raise SuiteError(
                f"{path}: --set does not apply to a lock file (its runs are fixed): lock the "
                "suite with --set instead (`ftbench lock SUITE.yaml --set ...`)"
            )
        plan = _locked_plan(path, only, shard, estimates, require_runnable)
    else:
        suite = load_suite(path, overrides)
        grid = expand(suite)
        if only:
            only.check(grid, path)
            grid = [s for s in grid if only.matches(s)]
        grid = shard.select(grid)
        if require_runnable:
            _refuse_if_nothing_runs(path, grid)
        planner = Planner(estimate_without_budget=estimates)
        runs: dict[str, PlannedRun] = {}
        for spec in grid:
            for run in planner.plan(spec):
                runs.setdefault(run.spec.run_id, run)
        plan = Plan(suite, path, list(runs.values()))
    if availability:
        plan.check_availability()
    return plan


def plan_specs(plan: Plan, specs: list[RunSpec], planner: Planner | None = None) -> Plan:
    """More runs of the same suite (a tuning cell's trials or tuned re-runs), planned the same way."""
    planner = planner or Planner()
    runs: dict[str, PlannedRun] = {}
    for spec in specs:
        for run in planner.plan(spec):
            runs.setdefault(run.spec.run_id, run)
    return plan.subset(list(runs.values()))


def stored_run(spec: RunSpec) -> PlannedRun:
    """A stored spec as it ran (repro): a budget verdict and availability, never a change."""
    run = Planner(adjust=False).verdict(spec)
    run.unavailable = unavailable_runs([spec]).get(spec.run_id)
    return run


def _refuse_if_nothing_runs(path: Path, specs: list[RunSpec]) -> None:
    # model and dataset are what availability looks at, and the budget never changes them
    found = unavailable_runs(specs)
    if specs and len(found) == len(specs):
        raise NothingRunsHere(path, len(specs), sorted(set(found.values())))


def _locked_plan(
    path: Path, only: Only, shard: Shard, estimates: bool, require_runnable: bool
) -> Plan:

    suite, specs = load_locked(path)
    if only or shard:
        only.check(specs, path)
        kept = [s for s in specs if only.matches(s)]
        if shard:  # deal the grid runs; the stages come with them below
            stages = {up for s in specs for up in (s.upstream or {}).values()}
            kept = shard.select([s for s in kept if s.run_id not in stages])
        keep = {s.run_id for s in kept}
        by_id = {s.run_id: s for s in specs}
        pending = list(keep)
        while pending:  # the stages the kept runs start from come with them
            for upstream in (by_id[pending.pop()].upstream or {}).values():
                if upstream in by_id and upstream not in keep:
                    keep.add(upstream)
                    pending.append(upstream)
        specs = [s for s in specs if s.run_id in keep]
    if require_runnable:
        _refuse_if_nothing_runs(path, specs)
    referenced = {up for s in specs for up in (s.upstream or {}).values()}
    planner = Planner(adjust=False, estimate_without_budget=estimates)
    runs = [planner.verdict(s, stage=s.run_id in referenced) for s in specs]
    return Plan(suite, path, runs, locked=True)


def unavailable_runs(specs: list[RunSpec]) -> dict[str, str]:
    """run_id -> reason, for runs that would fail for want of a model or dataset."""

    model_reasons: dict[str, str | None] = {}
    data_reasons: dict[str, str | None] = {}
    out: dict[str, str] = {}
    for spec in specs:
        model_key = spec.model.model_dump_json()
        if model_key not in model_reasons:
            try:
                resolve_model(spec.model)  # converts an offline asset into the cache once, here
                model_reasons[model_key] = None
            except ModelUnavailableError as exc:
                model_reasons[model_key] = str(exc)
        data_key = spec.dataset.model_dump_json()
        if data_key not in data_reasons:
            data_reasons[data_key] = dataset_unavailable(spec.dataset)
        reason = model_reasons[model_key] or data_reasons[data_key]
        if reason:
            out[spec.run_id] = reason
    return out


def format_plan(plan: Plan) -> str:
    """One line per cell (seeds share a verdict): the table `ftbench plan` prints."""
    header = (
        f"{'cell':44s} {'micro-batch':>11s} {'ckpt':>4s} {'weights':>8s} {'grad+opt':>8s} "
        f"{'activ.':>7s} {'logits':>7s} {'peak GB':>8s} {'band GB':>11s} {'limit':>6s}  verdict"
    )
    lines = [header, "-" * len(header)]
    seen: set[str] = set()
    for run in plan.runs:
        spec, fitted = run.spec, run.fitted
        if spec.cell in seen:
            continue
        seen.add(spec.cell)
        t = spec.training
        parts = fitted.estimate.parts if fitted.estimate else {}

        def gb(*keys: str, parts: dict[str, int] = parts) -> str:
            return f"{sum(parts.get(k, 0) for k in keys) / GB:.2f}" if parts else "-"

        limit = f"{fitted.verdict.limit_bytes / GB:.1f}" if fitted.verdict.limit_bytes else "-"
        v = fitted.verdict
        fits = {True: "fits", False: "OVER", None: "?"}[v.fits]
        if v.margin_bytes is not None:  # the verdict is the band's upper bound against the limit
            room = v.margin_bytes / GB
            fits += f" (margin {room:.1f} GB)" if room >= 0 else f" (by {-room:.1f} GB)"
        band = f"{v.lower_bytes / GB:.2f}-{v.upper_bytes / GB:.2f}" if v.upper_bytes else "-"
        verdict_text = fits + (f" after {'; '.join(run.adjustments)}" if run.adjustments else "")
        if fitted.verdict.fits is None and not parts:
            verdict_text += f" ({fitted.verdict.reason})"
        if run.unavailable:
            verdict_text += " [cannot run here]"
        lines.append(
            f"{spec.cell[:44]:44s} {f'{t.batch_size}x{t.max_length}':>11s} "
            f"{'on' if t.gradient_checkpointing else 'off':>4s} "
            f"{gb('weights_frozen', 'weights_trainable', 'quant_constants'):>8s} "
            f"{gb('gradients', 'optimizer'):>8s} {gb('activations'):>7s} {gb('logits_loss'):>7s} "
            f"{gb('total'):>8s} {band:>11s} {limit:>6s}  {verdict_text}"
        )
    return "\n".join(lines)
