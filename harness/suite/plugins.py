"""The registries plug-ins fill, declared below everything that looks names up in them.

Backends, data sources, model assets and catalogued architectures register themselves where they
are defined (harness/backends/, harness/models/); a suite is checked against these registries
without importing any of them (a lookup loads the plug-ins once: harness.suite.registry). Tasks
are declared in harness/suite/tasks.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.suite.registry import Registry
from harness.suite.tasks import TASKS

if TYPE_CHECKING:
    from harness.backends import Backend
    from harness.suite.spec import RunSpec

BACKENDS: Registry[Backend] = Registry("backend")
DATA_SOURCES: Registry[Any] = Registry("data source")
MODEL_ASSETS: Registry[Any] = Registry("model asset")
# harness/models/architectures/<name>.json: the shapes memory estimates and random weights use
ARCHITECTURES: Registry[dict[str, Any]] = Registry("architecture")


def backend_for_task(task_name: str) -> Backend:
    return BACKENDS.get(TASKS.get(task_name).backend)


def backend_for(spec: RunSpec) -> Backend:
    return backend_for_task(spec.dataset.task)


def method_for(spec: RunSpec) -> Any:
    return backend_for(spec).methods.get(spec.method)


def all_method_names() -> dict[str, list[str]]:
    """Backend name -> its method names (for `ftbench ls` and error messages)."""
    return {name: BACKENDS.get(name).methods.names() for name in BACKENDS.names()}
