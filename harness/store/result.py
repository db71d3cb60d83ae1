"""RunResult: what one run produced, typed; the result.json of a run, written atomically.

Three parts, as PEFT's method comparison keeps them: `run_info` (the resolved spec, start and
finish time), `train_info` (status, metrics, curve, timings, parameter counts, memory, data
checks, declared extra tables) and `meta_info` (provenance). The worker writes it, the runner reads
it back and the store ingests it; nothing passes between them as an untyped dict.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.suite.registry import load_plugins

STATUSES = ("ok", "failed", "oom", "diverged", "timeout", "skipped", "pruned", "over_budget")
Status = Literal["ok", "failed", "oom", "diverged", "timeout", "skipped", "pruned", "over_budget"]
# `over_budget` (predicted not to fit the suite's memory budget) is not final: the verdict is
# taken again on every run of the suite, so a better estimate or a bigger budget lets it run.
# A result with one of these is final: a re-run skips it unless forced. `failed` is retried.
FINAL_STATUSES = frozenset({"ok", "diverged", "oom", "timeout", "pruned"})
RESULT_FILE = "result.json"

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
COLUMN_TYPES = frozenset({"VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "JSON"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultTable(_Model):
    """Rows a backend adds to the store beyond the common tables (e.g. scores per embedding
    width). The declaration travels with the rows: the store creates the table on first ingest,
    with `run_id` first and (run_id, *key) as its primary key."""

    columns: dict[str, str]  # column -> DuckDB type, in order
    key: list[str]
    rows: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ResultTable:
        for name, kind in self.columns.items():  # spliced into SQL: checked, never free text
            if not IDENTIFIER.match(name) or name == "run_id":
                raise ValueError(f"column name {name!r}: lower-case identifier other than run_id")
            if kind not in COLUMN_TYPES:
                raise ValueError(f"column {name!r}: type {kind!r} not in {sorted(COLUMN_TYPES)}")
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"key columns {missing} are not declared columns")
        for row in self.rows:
            if set(row) != set(self.columns):
                raise ValueError(f"row columns {sorted(row)} != declared {list(self.columns)}")
        return self

    def with_rows(self, rows: list[dict[str, Any]]) -> ResultTable:
        return self.model_copy(update={"rows": rows})


# train_info keys under which older result.json files kept a backend's rows -> the table they are
# now. Backends add theirs (harness/backends/embedding/evaluate.py).
LEGACY_TABLES: dict[str, ResultTable] = {}


class Timings(_Model):
    load_s: float | None = None  # model, data and method setup
    train_s: float | None = None  # optimizer steps only
    eval_s: float | None = None
    total_s: float | None = None


class ParamCounts(_Model):
    trainable_params: int | None = None
    total_params: int | None = None
    trainable_pct: float | None = None


class Memory(_Model):
    peak_mem_bytes: int | None = None  # CUDA max allocated on GPU, the process's peak RSS on CPU
    peak_mem_kind: str | None = None  # "cuda_max_allocated" | "cpu_peak_rss"
    peak_rss_bytes: int | None = None
    cuda_max_allocated: int | None = None
    cuda_max_reserved: int | None = None
    cuda_cap_bytes: int | None = None  # the budget's cap on a larger GPU
    weights_dtype: str | None = None
    measured_state: dict[str, int] | None = None  # weights/grads/optimizer after the first step
    estimate: dict[str, Any] | None = None  # the estimator's prediction per device


class TrainInfo(_Model):
    status: Status
    reason: str | None = None
    traceback: str | None = None
    metrics: dict[str, dict[str, float]] | None = None  # split -> name -> value; None: no metrics
    curve: list[dict[str, int | float]] | None = None  # per logged step: step, loss, ...
    timings: Timings | None = None
    params: ParamCounts | None = None
    memory: Memory | None = None
    train_tokens: int | None = None
    tokens_per_s: float | None = None  # over the whole training time (train_tokens / train_s)
    speed: dict[str, Any] | None = None  # per-step times, steady state (harness/run/speed.py)
    artifact_bytes: int | None = None
    precision_effective: str | None = None
    split_sizes: dict[str, int] | None = None
    notes: dict[str, Any] | None = None
    data_checks: dict[str, Any] | None = None
    intermediate: list[dict[str, int | float]] | None = None  # a tuning trial's reports
    tables: dict[str, ResultTable] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        # result.json files written before result tables existed kept a backend's rows under a
        # key of their own (e.g. `embedding_metrics`); they read as the table it declares now.
        # A backend registers its legacy key when it is imported, so any key this model does not
        # know loads the plug-ins first (in a fresh process none may be loaded yet).
        if isinstance(data, dict) and data.keys() - cls.model_fields.keys():
            load_plugins()
            data = dict(data)
            for key in LEGACY_TABLES.keys() & data.keys():
                rows = data.pop(key) or []
                if rows:
                    data.setdefault("tables", {})[key] = LEGACY_TABLES[key].with_rows(rows)
        return data


class RunInfo(_Model):
    # The resolved spec as a dict (RunSpec.model_dump): stored results stay readable even after
    # a method or data source they name is gone from the registries.
    spec: dict[str, Any]
    started_at: str | None = None
    finished_at: str | None = None


class RunResult(_Model):
    run_id: str
    run_info: RunInfo
    train_info: TrainInfo
    meta_info: dict[str, Any] = Field(
        default_factory=dict
    )  # provenance (harness/run/provenance.py)

    @field_validator("meta_info", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return value or {}

    @property
    def status(self) -> str:
        return self.train_info.status

    @property
    def spec(self) -> dict[str, Any]:
        return self.run_info.spec

    def metric(self, split: str, name: str) -> float | None:
        return ((self.train_info.metrics or {}).get(split) or {}).get(name)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def without_run(
        cls,
        spec: Any,
        status: str,
        *,
        reason: str | None = None,
        traceback: str | None = None,
        started_at: str | None = None,
    ) -> RunResult:
        """The result of a run that ended without output: not started (skipped, over budget),
        killed (timeout, oom) or crashed (failed)."""
        return cls(
            run_id=spec.run_id,
            run_info=RunInfo(
                spec=spec.model_dump(mode="json"), started_at=started_at, finished_at=now()
            ),
            train_info=TrainInfo(status=status, reason=reason, traceback=traceback),
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: RunResult | dict[str, Any]) -> None:
    if isinstance(data, RunResult):
        data = data.to_json()
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def read_result(run_dir: Path) -> RunResult | None:
    """The run's result.json, or None when it is missing or unreadable (a run killed mid-write
    leaves only the .tmp file)."""
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return RunResult.model_validate_json(path.read_text())
    except ValueError:
        return None
