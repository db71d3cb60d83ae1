"""Suite YAML -> strict pydantic models -> the grid's RunSpecs (each with a stable run_id).

A suite declares seeds, a budget, training defaults, models, datasets, methods and a grid. This
module reads and checks the file and expands the grid; how each spec will actually run (budget
verdicts and adjustments, upstream stages, availability) is decided once, by harness/plan/plan.py.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, StrictBool, StrictFloat, StrictInt, ValidationError

from harness.suite.budget_profile import Budget
from harness.suite.config import EntryFieldError, StrictModel, optional
from harness.suite.executor_config import ExecutorConfig
from harness.suite.plugins import all_method_names, backend_for_task, method_for
from harness.suite.registry import UnknownNameError, did_you_mean
from harness.suite.search_space import SearchDim, TuneConfig
from harness.suite.spec import DatasetSpec, Determinism, ModelSpec, RunSpec, TrainingConfig
from harness.suite.tasks import TASKS

SUITES_DIR = Path("suites")


class SuiteError(ValueError):
    """A suite cannot be used; the message names the file and every offending field."""


# A swept entry's key: the entry's key, then `@name=value` per swept setting (sorted by name),
# e.g. `dpo@beta=0.1`. The key is the run's method_key, so it is part of its run_id; the part
# before the first `@` names the family the runs of one sweep belong to (sweep_family).
SWEEP_SEP = "@"
SweepValue = StrictBool | StrictInt | StrictFloat | str
_SWEEP_FORBIDDEN = (SWEEP_SEP, "=", ",", "|")  # they would break the key or `--only` parsing


class MethodEntry(StrictModel):
    method: str | None = None  # registry name; defaults to the entry's key
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, SearchDim] = Field(default_factory=dict)  # used by `ftbench tune`
    # A method param or training field -> values: one entry (so one run per seed) per value, or
    # per combination when several are swept. `params.X` / `training.X` say which when both exist.
    sweep: dict[str, list[SweepValue]] = Field(default_factory=dict)
    # Task-adaptive pre-training before the method (SFT methods): {steps: N, ...}, validated by
    # the backend (harness/backends/sft/tapt.py), which runs it as a shared upstream stage.
    tapt: dict[str, Any] | None = None


def sweep_family(method_key: str) -> str:
    """The entry a method key was swept from (`dpo@beta=0.1` -> `dpo`; unswept keys unchanged)."""
    return method_key.split(SWEEP_SEP, 1)[0]


def sweep_setting(method_key: str) -> str:
    """The swept settings of a method key (`dpo@beta=0.1` -> `beta=0.1`; '' when unswept)."""
    return method_key.partition(SWEEP_SEP)[2].replace(SWEEP_SEP, " ")


def _sweep_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def swept_entries(key: str, entry: MethodEntry) -> list[tuple[str, dict[str, Any]]]:
    """(method key, swept values) of each entry a method entry stands for: itself when it has
    no sweep, else one per combination of the swept values, in the order the values are listed."""
    if not entry.sweep:
        return [(key, {})]
    names = sorted(entry.sweep)
    out = []
    for combo in itertools.product(*(entry.sweep[n] for n in names)):
        parts = [f"{n}={_sweep_text(v)}" for n, v in zip(names, combo, strict=True)]
        out.append((SWEEP_SEP.join([key, *parts]), dict(zip(names, combo, strict=True))))
    return out


class Match(StrictModel):
    method: str | None = None  # an entry's key; a swept entry also answers to its family's key
    model: str | None = None
    dataset: str | None = None

    def matches(self, method: str, model: str, dataset: str) -> bool:
        return all(
            want is None or want == got
            for want, got in ((self.method, method), (self.model, model), (self.dataset, dataset))
        ) or (method != sweep_family(method) and self.matches(sweep_family(method), model, dataset))


class Override(StrictModel):
    when: Match
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class Grid(StrictModel):
    methods: list[str]
    models: list[str]
    datasets: list[str]
    exclude: list[Match] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)


class Suite(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = 1
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    budget: Budget = Budget()
    training: TrainingConfig = TrainingConfig()
    models: dict[str, ModelSpec]
    datasets: dict[str, DatasetSpec]
    methods: dict[str, MethodEntry]
    grid: Grid
    tune: TuneConfig | None = None
    determinism: Determinism | None = None
    # Where runs execute (`ftbench run --executor` overrides it); never part of a run_id, and
    # left out of the suite's stored config while unset.
    executor: ExecutorConfig | None = optional()


# --------------------------------------------------------------------------- finding a suite


def locate(name_or_path: str | Path, folder: Path = SUITES_DIR) -> Path:
    """The suite file a user means: a path, suites/NAME.yaml, or the file whose `name:` is NAME
    (the file's stem need not be its name). A lock file (*.json) is returned as given."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file():
        return path
    if path.suffix in (".yaml", ".yml"):
        raise SuiteError(f"{path}: no such suite file (suites live in {folder}/<name>.yaml)")
    by_stem = folder / f"{name_or_path}.yaml"
    if by_stem.is_file():
        return by_stem
    names = declared_names(folder)
    matches = [p for p, n in names.items() if n == str(name_or_path)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SuiteError(
            f"suite name {str(name_or_path)!r} is declared by {len(matches)} files: "
            f"{', '.join(map(str, sorted(matches)))}; give the path"
        )
    known = sorted(set(names.values()))
    raise SuiteError(
        f"no suite named {str(name_or_path)!r} in {folder}/"
        f"{did_you_mean(str(name_or_path), known)} (known: {', '.join(known) or 'none'})"
    )


def declared_names(folder: Path = SUITES_DIR) -> dict[Path, str]:
    """Every suite file under `folder` (recursively) with the `name:` it declares."""
    out: dict[Path, str] = {}
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            out[path] = data["name"]
    return out


def suite_name(name_or_path: str | Path) -> str:
    """The name results are stored under: the `name:` of the suite (or lock) file the argument
    points to, else the argument itself (a suite whose file is gone still has its results)."""
    try:
        path = locate(name_or_path)
    except SuiteError:
        return str(name_or_path)
    try:
        if path.suffix == ".json":
            import json

            return str(json.loads(path.read_text())["suite"]["name"])
        return str(yaml.safe_load(path.read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return path.stem.removesuffix(".lock")


# --------------------------------------------------------------------------- loading


_FLOATISH = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _describe(err: dict[str, Any], prefix: tuple[Any, ...] = ()) -> str:
    loc = ".".join(str(p) for p in (*prefix, *err["loc"])) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling and where it is nested)"
    value = err.get("input")
    if isinstance(value, str) and _FLOATISH.match(value):
        msg += f"; YAML read {value!r} as a string: write it with a dot, e.g. 1.0e-4"
    return f"{loc}: {msg}"


def _errors(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    return [_describe(e, prefix) for e in exc.errors(include_url=False)]


def load_suite(path: str | Path) -> Suite:
    """Parse and validate a suite file; raise SuiteError naming the file and fields."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file (suites live in suites/<name>.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite must be a mapping of keys (name, seeds, grid, ...)")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(_report(path, _errors(exc))) from None
    except UnknownNameError as exc:  # raised inside nested validators
        raise SuiteError(f"{path}: {exc}") from None
    problems = _cross_check(suite)
    if problems:
        raise SuiteError(_report(path, problems))
    return suite


def _report(path: Path, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{path}: invalid suite ({len(problems)} problem(s)):\n{lines}"


def _cross_check(suite: Suite) -> list[str]:
    """Checks across sections: grid names exist, methods are known, params validate."""
    problems: list[str] = []
    for axis, known in (
        ("methods", suite.methods),
        ("models", suite.models),
        ("datasets", suite.datasets),
    ):
        for name in getattr(suite.grid, axis):
            if name not in known:
                problems.append(
                    f"grid.{axis}: {name!r} is not declared under {axis}: {_did_you_mean(name, known)}"
                )
    known_methods = {m for names in all_method_names().values() for m in names}
    for key, entry in suite.methods.items():
        name = entry.method or key
        if name not in known_methods:
            problems.append(
                f"methods.{key}.method: unknown method {name!r}"
                f"{did_you_mean(name, known_methods, n=3)} (known: {', '.join(sorted(known_methods))})"
            )
    problems += _check_sweeps(suite)
    problems += _check_search(suite)
    if problems:
        return problems
    specs, problems = _expand(suite)
    if not specs and not problems:
        problems.append("grid: the grid is empty (every combination is excluded)")
    return problems


def _check_sweeps(suite: Suite) -> list[str]:
    """Entry keys leave `@` to swept entries; swept values are distinct and fit in a key; a swept
    entry is not tuned (its runs are the search)."""
    problems = []
    for key, entry in suite.methods.items():
        if SWEEP_SEP in key:
            problems.append(
                f"methods.{key}: {SWEEP_SEP!r} is reserved for swept entries (`dpo@beta=0.1`); "
                "rename the entry"
            )
        if entry.sweep and entry.search:
            problems.append(
                f"methods.{key}: `sweep` and `search` cannot be combined (`ftbench tune` does not "
                "tune swept entries); declare a second entry for tuning"
            )
        for name, values in entry.sweep.items():
            where = f"methods.{key}.sweep.{name}"
            if not values:
                problems.append(f"{where}: give at least one value")
            texts = [_sweep_text(v) for v in values]
            if len(set(texts)) < len(texts):
                problems.append(f"{where}: a value is listed twice ({', '.join(texts)})")
            for text in texts:
                if any(c in text for c in _SWEEP_FORBIDDEN) or any(c.isspace() for c in text):
                    problems.append(
                        f"{where}: {text!r} cannot be part of a method key (no spaces or "
                        f"{' '.join(_SWEEP_FORBIDDEN)})"
                    )
    return problems


def split_values(
    values: dict[str, Any], params_model: Any, where: str
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(method params, training fields, problems) of named values (a sweep's or a search
    space's): `params.X` and `training.X` say where; a bare name goes where it is defined, and
    must be defined once (`where` prefixes each problem, e.g. `methods.dpo.search`)."""
    params, training, problems = {}, {}, []
    in_params, in_training = set(params_model.model_fields), set(TrainingConfig.model_fields)
    for name, value in values.items():
        section, dot, field = name.rpartition(".")
        if dot and section in ("params", "training"):
            known = in_params if section == "params" else in_training
            if field in known:
                (params if section == "params" else training)[field] = value
                continue
            hint = did_you_mean(field, known, cutoff=0.6)
            problems.append(f"{where}.{name}: {field!r} is not a {section} field{hint}")
        elif name in in_params and name in in_training:
            problems.append(
                f"{where}.{name}: both a method parameter and a training field; write "
                f"params.{name} or training.{name}"
            )
        elif name in in_params or name in in_training:
            (params if name in in_params else training)[name] = value
        else:
            hint = did_you_mean(name, in_params | in_training, cutoff=0.6)
            problems.append(
                f"{where}.{name}: neither a training field nor a method parameter{hint}"
            )
    return params, training, problems


def _check_search(suite: Suite) -> list[str]:
    """Search keys must name a training field or a method parameter; `tune` needs a space."""
    problems = []
    for key, entry in suite.methods.items():
        method = _grid_method(suite, key)
        if method is not None:
            problems += split_values(entry.search, method.Params, f"methods.{key}.search")[2]
    tune = suite.tune
    if tune is not None:
        if not any(suite.methods[m].search for m in suite.grid.methods if m in suite.methods):
            problems.append("tune: no method in the grid declares a `search:` space")
        for dataset_key in suite.grid.datasets:
            dataset = suite.datasets.get(dataset_key)
            if (
                dataset
                and tune.metric
                and tune.metric not in TASKS.get(dataset.task).metric_names()
            ):
                problems.append(
                    f"tune.metric: {tune.metric!r} is not produced by task {dataset.task!r} "
                    f"(dataset {dataset_key!r})"
                )
            if dataset and dataset.splits.get("validation", 0) < 1:
                problems.append(
                    f"datasets.{dataset_key}.splits.validation: tuning needs a validation split"
                )
    return problems


def _grid_method(suite: Suite, method_key: str) -> Any:
    """The method object a method entry resolves to, through the backend of a dataset it is
    combined with in the grid (None when no dataset's backend knows it)."""
    name = suite.methods[method_key].method or method_key
    for dataset_key in suite.grid.datasets:
        dataset = suite.datasets.get(dataset_key)
        if dataset is not None and name in backend_for_task(dataset.task).methods:
            return backend_for_task(dataset.task).methods.get(name)
    return None


def with_values(spec: RunSpec, values: dict[str, Any], **update: Any) -> RunSpec:
    """A copy of `spec` with searched values applied (training fields or method params). Its
    upstream stages and budget verdict are the plan's to decide again (plan.plan_spec)."""
    method = method_for(spec)
    params, training, problems = split_values(values, method.Params, f"methods.{spec.method_key}")
    if problems:
        raise ValueError("; ".join(problems))
    return spec.model_copy(
        update={
            "params": method.Params.model_validate({**spec.params, **params}).model_dump(
                mode="json"
            ),
            "training": TrainingConfig.model_validate({**spec.training.model_dump(), **training}),
            **update,
        }
    )


def _did_you_mean(name: str, known: dict[str, Any]) -> str:
    hint = did_you_mean(name, known)
    return hint.removeprefix("; ") if hint else f"declared: {', '.join(sorted(known))}"


def expand(suite: Suite) -> list[RunSpec]:
    """The grid's specs: methods x models x datasets x seeds, minus exclusions, with overrides
    applied (upstream stages and budget adjustments come from the plan)."""
    specs, problems = _expand(suite)
    if problems:
        raise SuiteError(_report(Path(suite.name), problems))
    return specs


def _expand(suite: Suite) -> tuple[list[RunSpec], list[str]]:
    specs: list[RunSpec] = []
    problems: list[str] = []
    grid = suite.grid
    for method_key, model_key, dataset_key in itertools.product(
        grid.methods, grid.models, grid.datasets
    ):
        entry = suite.methods[method_key]
        method_name = entry.method or method_key
        task = suite.datasets[dataset_key].task
        backend = backend_for_task(task)
        if method_name not in backend.methods:
            if not any(m.matches(method_key, model_key, dataset_key) for m in grid.exclude):
                problems.append(
                    f"grid: method {method_name!r} (methods.{method_key}) cannot train task "
                    f"{task!r} (dataset {dataset_key!r}); methods for it: "
                    f"{', '.join(backend.methods.names())}. Exclude the combination under "
                    "grid.exclude or use one of those methods."
                )
            continue
        method = backend.methods.get(method_name)
        for entry_key, swept in swept_entries(method_key, entry):
            if any(m.matches(entry_key, model_key, dataset_key) for m in grid.exclude):
                continue
            where = f"methods.{method_key}"
            swept_params, swept_training, found = split_values(
                swept, method.Params, f"{where}.sweep"
            )
            problems += found
            if found:
                continue
            params = {**entry.params, **swept_params}
            training = {**suite.training.model_dump(), **entry.training, **swept_training}
            for i, override in enumerate(grid.overrides):
                if override.when.matches(entry_key, model_key, dataset_key):
                    for section, given, mine in (
                        ("params", override.params, swept_params),
                        ("training", override.training, swept_training),
                    ):
                        for name in sorted(set(given) & set(mine)):
                            problems.append(
                                f"grid.overrides[{i}].{section}.{name}: methods.{method_key} "
                                "sweeps it; an override would make its swept runs identical"
                            )
                    params.update(override.params)
                    training.update(override.training)
                    params.update(swept_params)
                    training.update(swept_training)
                    where = f"grid.overrides[{i}] / methods.{method_key}"
            specs += _entry_specs(
                suite, backend, method, entry_key, method_name, model_key, dataset_key,
                params, training, where, problems, tapt=entry.tapt,
            )  # fmt: skip
    return specs, list(dict.fromkeys(problems))


def _entry_specs(
    suite: Suite, backend: Any, method: Any, method_key: str, method_name: str, model_key: str,
    dataset_key: str, params: dict[str, Any], training: dict[str, Any], where: str,
    problems: list[str], tapt: dict[str, Any] | None = None,
) -> list[RunSpec]:  # fmt: skip
    """One grid cell's specs, one per seed (problems are appended, not raised)."""
    try:
        resolved_params = method.Params.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        problems += _errors(exc, (where, "params"))
        return []
    try:
        resolved_training = TrainingConfig.model_validate(training)
    except ValidationError as exc:
        problems += _errors(exc, (where, "training"))
        return []
    if resolved_training.precision == "bf16" and not suite.budget.supports_bf16:
        problems.append(
            f"{where}.training.precision: bf16 is not supported by budget profile "
            f"{suite.budget.profile!r} (a T4 has no bf16): use fp16 or fp32"
        )
        return []
    specs = []
    for seed in suite.seeds:
        spec = RunSpec(
            suite=suite.name,
            suite_version=suite.version,
            method_key=method_key,
            method=method_name,
            params=resolved_params,
            model_key=model_key,
            model=suite.models[model_key],
            dataset_key=dataset_key,
            dataset=suite.datasets[dataset_key],
            training=resolved_training,
            seed=seed,
            budget=suite.budget,
            determinism=suite.determinism,
            tapt=tapt,
        )
        try:  # the stages a run starts from are derived from it: their errors are the suite's
            stages = backend.upstream(spec)
        except EntryFieldError as exc:  # the entry's own field (its tapt), not its params
            problems.append(f"methods.{sweep_family(method_key)}.{exc}")
            continue
        except (ValueError, ValidationError) as exc:
            problems.append(f"{where}.params: {exc}")
            continue
        if tapt is not None and "tapt" not in stages:
            problems.append(
                f"methods.{sweep_family(method_key)}.tapt: method {method_name!r} on task "
                f"{suite.datasets[dataset_key].task!r} does not start from a TAPT stage (SFT "
                "methods do): remove tapt from this entry"
            )
            continue
        specs.append(spec)
    return specs
