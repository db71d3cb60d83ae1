"""Before a suite starts: find the runs whose model or data cannot be had here, and say why."""

from __future__ import annotations

from harness.data import DATA_SOURCES
from harness.models import ModelUnavailableError, resolve_model
from harness.suite import RunSpec


def unavailable_runs(specs: list[RunSpec]) -> dict[str, str]:
    """run_id -> reason, for runs that would fail for want of a model or dataset."""
    model_reasons: dict[str, str | None] = {}
    data_reasons: dict[str, str | None] = {}
    out: dict[str, str] = {}
    for spec in specs:
        if spec.model_key not in model_reasons:
            try:
                resolve_model(spec.model)  # converts an offline asset into the cache once, here
                model_reasons[spec.model_key] = None
            except ModelUnavailableError as exc:
                model_reasons[spec.model_key] = str(exc)
        if spec.dataset_key not in data_reasons:
            source = DATA_SOURCES.get(spec.dataset.source)
            data_reasons[spec.dataset_key] = source.unavailable_reason(
                source.Options.model_validate(spec.dataset.options)
            )
        reason = model_reasons[spec.model_key] or data_reasons[spec.dataset_key]
        if reason:
            out[spec.run_id] = reason
    return out
