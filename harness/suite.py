"""Suite YAML -> strict pydantic models -> expanded list of RunSpecs (each with a stable run_id)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from harness.config import StrictModel
from harness.registry import UnknownNameError, did_you_mean
from harness.search import SearchDim, TrialRef, TuneConfig, TunedRef

Precision = Literal["fp32", "fp16", "bf16"]


class SuiteError(ValueError):
    """A suite cannot be used; the message names the file and every offending field."""


class Budget(StrictModel):
    """The memory budget a suite targets. `t4`: 16 GB card (~15 GB usable), fp16 only."""

    profile: Literal["none", "t4", "custom"] = "none"
    gpu_mem_gb: float | None = None
    # What happens to a run predicted not to fit: `skip` (status over_budget, recorded; the
    # default) or `adjust` (gradient checkpointing, then smaller micro-batches with more
    # accumulation, keeping the effective batch). None keeps old run_ids unchanged.
    over_budget: Literal["skip", "adjust"] | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.profile == "custom" and self.gpu_mem_gb is None:
            raise ValueError("profile 'custom' needs gpu_mem_gb (e.g. gpu_mem_gb: 24.0)")
        if self.profile != "custom" and self.gpu_mem_gb is not None:
            raise ValueError("gpu_mem_gb is only for profile 'custom'")
        return self

    @property
    def supports_bf16(self) -> bool:
        return self.profile != "t4"  # a T4 (compute capability 7.5) has no bf16

    @property
    def limit_gb(self) -> float | None:
        """Usable GPU memory in GB (1e9 bytes). A T4 has 16 GB, ~15 usable after the CUDA context."""
        return {"t4": 15.0, "none": None}.get(self.profile, self.gpu_mem_gb)

    @property
    def limit_bytes(self) -> int | None:
        return None if self.limit_gb is None else int(self.limit_gb * 1e9)


class TrainingConfig(StrictModel):
    """Training settings shared by every method; a method or grid override may change any."""

    max_steps: int = Field(100, ge=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    learning_rate: float = Field(2.0e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: str = "linear"
    optimizer: str = "adamw_torch"
    max_length: int = Field(256, ge=8)
    # TRL's SFT loss: None = TRL's default `chunked_nll` (the head runs in chunks of 256 tokens);
    # `nll` materialises batch x length x vocab logits, upcast to fp32.
    loss_type: Literal["chunked_nll", "nll"] | None = None
    logging_steps: int = Field(1, ge=1)
    eval_batch_size: int = Field(16, ge=1)
    precision: Precision = "fp32"
    gradient_checkpointing: bool = False
    save_weights: bool = True
    timeout_s: int = Field(1800, ge=1)


class Determinism(StrictModel):
    """Seeds are always set (Python, NumPy, torch, Trainer seed and data order) from the run seed.

    `strict` adds deterministic kernels (torch.use_deterministic_algorithms, cuDNN deterministic,
    CUBLAS_WORKSPACE_CONFIG) and pins the CPU thread count, so a CPU run is bit-identical when
    repeated. `rel_tol`/`abs_tol` are what `ftbench repro` allows where results are not exact
    (GPU, or not strict); they do not change a run, so they are not part of its run_id.
    """

    strict: bool = False
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads; strict pins 1 when unset
    rel_tol: float = Field(0.02, ge=0)
    abs_tol: float = Field(0.0, ge=0)

    @property
    def threads(self) -> int | None:
        """The torch thread count to set (None: leave torch's default)."""
        return self.num_threads or (1 if self.strict else None)


REPRO_ONLY_FIELDS = {"rel_tol", "abs_tol"}  # how results are compared, not how they are made


class ModelSpec(StrictModel):
    """Exactly one of: a named offline `asset`, a `hub` id (with `revision`), or a local `path`."""

    asset: str | None = None
    hub: str | None = None
    revision: str = "main"
    path: str | None = None
    # The catalogued shape (harness/architectures/<name>.json) when it cannot be found by hub id.
    architecture: str | None = None
    # `random`: a systems-only run (memory, throughput) on randomly initialised weights built
    # from the architecture; its quality metrics never enter rankings.
    weights: Literal["pretrained", "random"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in ("asset", "hub", "path") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of asset, hub, path (got {given or 'none'})")
        if self.asset:
            from harness.models import MODEL_ASSETS

            MODEL_ASSETS.get(self.asset)
        if self.architecture:
            from harness.architectures import architecture_name

            architecture_name(self)  # an unknown name fails here, with the known ones listed
        return self

    @property
    def systems_only(self) -> bool:
        return self.weights == "random"


class DatasetSpec(StrictModel):
    source: str
    options: dict[str, Any] = Field(default_factory=dict)
    task: str
    splits: dict[Literal["train", "validation", "test"], int] = Field(
        default_factory=lambda: {"train": 1000, "validation": 100, "test": 200}
    )
    split_seed: int = 0
    metric: str | None = None  # the headline metric; defaults to the task's primary metric

    @model_validator(mode="after")
    def _known(self) -> DatasetSpec:
        from harness.data import DATA_SOURCES
        from harness.tasks import TASKS

        source = DATA_SOURCES.get(self.source)
        source.Options.model_validate(self.options)
        task = TASKS.get(self.task)
        if self.metric is not None and self.metric not in task.metrics:
            raise ValueError(
                f"metric {self.metric!r} is not produced by task {self.task!r}; "
                f"choose one of {sorted(task.metrics)}"
            )
        for split in ("train", "test"):
            if self.splits.get(split, 0) < 1:
                raise ValueError(f"splits.{split} must be at least 1")
        return self

    @property
    def headline_metric(self) -> str:
        from harness.tasks import TASKS

        return self.metric or TASKS.get(self.task).primary_metric


class MethodEntry(StrictModel):
    method: str | None = None  # registry name; defaults to the entry's key
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, SearchDim] = Field(default_factory=dict)  # used by `ftbench tune`


class Match(StrictModel):
    method: str | None = None
    model: str | None = None
    dataset: str | None = None

    def matches(self, method: str, model: str, dataset: str) -> bool:
        return all(
            want is None or want == got
            for want, got in ((self.method, method), (self.model, model), (self.dataset, dataset))
        )


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


class RunSpec(StrictModel):
    """One fully resolved run: everything that determines its result, and nothing else."""

    suite: str
    suite_version: int
    method_key: str
    method: str
    params: dict[str, Any]
    model_key: str
    model: ModelSpec
    dataset_key: str
    dataset: DatasetSpec
    training: TrainingConfig
    seed: int
    budget: Budget
    trial: TrialRef | None = None  # set on tuning trials
    tuned: TunedRef | None = None  # set on re-runs of a cell's best trial
    determinism: Determinism | None = None
    budget_adjustments: list[str] | None = None  # set when the budget policy changed training
    upstream: dict[str, str] | None = None  # role -> run_id of a run this one starts from

    @property
    def resolved(self) -> dict[str, Any]:
        # Unset optional fields are left out, so adding one later does not change old run_ids;
        # repro tolerances are left out too: they do not affect what a run computes.
        return self.model_dump(
            mode="json", exclude_none=True, exclude={"determinism": REPRO_ONLY_FIELDS}
        )

    @property
    def determinism_settings(self) -> Determinism:
        return self.determinism or Determinism()

    @property
    def run_id(self) -> str:
        return config_hash(self.resolved)[:16]

    @property
    def origin(self) -> str:
        return "trial" if self.trial else "tuned" if self.tuned else "run"

    @property
    def cell(self) -> str:
        return f"{self.method_key}·{self.model_key}·{self.dataset_key}"

    @property
    def label(self) -> str:
        suffix = f"·trial{self.trial.number}" if self.trial else "·tuned" if self.tuned else ""
        return f"{self.cell}·s{self.seed}{suffix}"


def config_hash(obj: Any) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    from harness.backends import all_method_names

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
    problems += _check_search(suite)
    if problems:
        return problems
    specs, problems = _expand(suite)
    if not specs and not problems:
        problems.append("grid: the grid is empty (every combination is excluded)")
    return problems


def _check_search(suite: Suite) -> list[str]:
    """Search keys must name a training field or a method parameter; `tune` needs a space."""
    from harness.tasks import TASKS

    problems = []
    for key, entry in suite.methods.items():
        name = entry.method or key
        method = _grid_method(suite, key)
        if method is None:
            continue
        known = set(TrainingConfig.model_fields) | set(method.Params.model_fields)
        for dim in entry.search:
            if dim not in known:
                hint = did_you_mean(dim, known, cutoff=0.6)
                problems.append(
                    f"methods.{key}.search.{dim}: neither a training field nor a parameter of "
                    f"method {name!r}{hint}"
                )
    tune = suite.tune
    if tune is not None:
        if not any(suite.methods[m].search for m in suite.grid.methods if m in suite.methods):
            problems.append("tune: no method in the grid declares a `search:` space")
        for dataset_key in suite.grid.datasets:
            dataset = suite.datasets.get(dataset_key)
            if dataset and tune.metric and tune.metric not in TASKS.get(dataset.task).metrics:
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
    from harness.backends import backend_for_task

    name = suite.methods[method_key].method or method_key
    for dataset_key in suite.grid.datasets:
        dataset = suite.datasets.get(dataset_key)
        if dataset is not None and name in backend_for_task(dataset.task).methods:
            return backend_for_task(dataset.task).methods.get(name)
    return None


def with_values(spec: RunSpec, values: dict[str, Any], **update: Any) -> RunSpec:
    """A copy of `spec` with searched values applied (training fields or method params)."""
    from harness.backends import method_for

    training = {k: v for k, v in values.items() if k in TrainingConfig.model_fields}
    params = {k: v for k, v in values.items() if k not in training}
    method = method_for(spec)
    changed = spec.model_copy(
        update={
            "params": method.Params.model_validate({**spec.params, **params}).model_dump(
                mode="json"
            ),
            "training": TrainingConfig.model_validate({**spec.training.model_dump(), **training}),
            **update,
        }
    )
    return with_upstream([changed])[-1]  # the upstream runs follow the new values and seed


def with_upstream(specs: list[RunSpec]) -> list[RunSpec]:
    """Each spec preceded by the runs it starts from (its backend's `upstream`, recursively), with
    their run_ids recorded on it; a run shared by several specs appears once."""
    from harness.backends import backend_for

    out: dict[str, RunSpec] = {}

    def add(spec: RunSpec) -> RunSpec:
        upstream = backend_for(spec).upstream(spec)
        links = {role: add(up).run_id for role, up in upstream.items()}
        linked = spec.model_copy(update={"upstream": links or None})
        out.setdefault(linked.run_id, linked)
        return linked

    for spec in specs:
        add(spec)
    return list(out.values())


def _did_you_mean(name: str, known: dict[str, Any]) -> str:
    hint = did_you_mean(name, known)
    return hint.removeprefix("; ") if hint else f"declared: {', '.join(sorted(known))}"


def expand(suite: Suite) -> list[RunSpec]:
    """The product methods x models x datasets x seeds, minus exclusions, with overrides applied."""
    specs, problems = _expand(suite)
    if problems:
        raise SuiteError(_report(Path(suite.name), problems))
    return specs


def _expand(suite: Suite) -> tuple[list[RunSpec], list[str]]:
    from harness.backends import backend_for_task

    specs: list[RunSpec] = []
    problems: list[str] = []
    grid = suite.grid
    for method_key, model_key, dataset_key in itertools.product(
        grid.methods, grid.models, grid.datasets
    ):
        if any(m.matches(method_key, model_key, dataset_key) for m in grid.exclude):
            continue
        entry = suite.methods[method_key]
        method_name = entry.method or method_key
        task = suite.datasets[dataset_key].task
        methods = backend_for_task(task).methods
        if method_name not in methods:
            problems.append(
                f"grid: method {method_name!r} (methods.{method_key}) cannot train task {task!r} "
                f"(dataset {dataset_key!r}); methods for it: {', '.join(methods.names())}. "
                f"Exclude the combination under grid.exclude or use one of those methods."
            )
            continue
        method = methods.get(method_name)
        params = dict(entry.params)
        training = {**suite.training.model_dump(), **entry.training}
        where = f"methods.{method_key}"
        for i, override in enumerate(grid.overrides):
            if override.when.matches(method_key, model_key, dataset_key):
                params.update(override.params)
                training.update(override.training)
                where = f"grid.overrides[{i}] / methods.{method_key}"
        try:
            resolved_params = method.Params.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            problems += _errors(exc, (where, "params"))
            continue
        try:
            resolved_training = TrainingConfig.model_validate(training)
        except ValidationError as exc:
            problems += _errors(exc, (where, "training"))
            continue
        if resolved_training.precision == "bf16" and not suite.budget.supports_bf16:
            problems.append(
                f"{where}.training.precision: bf16 is not supported by budget profile "
                f"{suite.budget.profile!r} (a T4 has no bf16): use fp16 or fp32"
            )
            continue
        for seed in suite.seeds:
            specs.append(
                RunSpec(
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
                )
            )
    return with_upstream(specs), list(dict.fromkeys(problems))


def load_specs(path: str | Path) -> tuple[Suite, list[RunSpec]]:
    suite = load_suite(path)
    return suite, expand(suite)
