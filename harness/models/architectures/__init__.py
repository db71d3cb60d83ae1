"""Architecture catalogue: the config values of the models the shipped suites use, in the repo.

Memory estimates and systems-only runs (`weights: random`) need a model's shape, not its weights;
keeping the shape-determining config values here makes both work without the hub. Each JSON file
holds `name`, the `hub_ids` it stands for, and the `config` fields as published on the hub.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from harness.suite.plugins import ARCHITECTURES, MODEL_ASSETS
from harness.suite.registry import UnknownNameError, did_you_mean

CATALOGUE_DIR = Path(__file__).parent


class ArchitectureUnknownError(UnknownNameError):
    """No architecture can be found for a model without downloading anything."""


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    entries = {}
    for path in sorted(CATALOGUE_DIR.glob("*.json")):
        entry = json.loads(path.read_text())
        entries[entry["name"]] = entry
    return entries


def _by_hub_id(hub_id: str) -> str | None:
    return next((n for n, e in catalogue().items() if hub_id in e["hub_ids"]), None)


def config_from_dict(values: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    values = dict(values)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def architecture_name(model_spec: Any) -> str | None:
    """The catalogue entry a suite ModelSpec maps to (explicit `architecture`, or by hub id)."""
    if model_spec.architecture:
        if model_spec.architecture not in catalogue():
            raise ArchitectureUnknownError(
                f"architecture {model_spec.architecture!r} is not in the catalogue"
                f"{did_you_mean(model_spec.architecture, catalogue(), n=3)} "
                f"(known: {', '.join(catalogue())}; add one as harness/models/architectures/<name>.json)"
            )
        return model_spec.architecture
    if model_spec.hub:
        return _by_hub_id(model_spec.hub)
    if model_spec.asset:
        return _by_hub_id(MODEL_ASSETS.get(model_spec.asset).hub_id)
    return None


def architecture_config(model_spec: Any) -> tuple[str, Any]:
    """(where the shape came from, a transformers config) for a suite ModelSpec, offline.

    Catalogue first; otherwise a config.json on disk (a local `path`, an offline asset, which
    may be built on first use, or a hub model's snapshot in the local Hugging Face cache). A hub
    model outside the catalogue that is not cached either is an error naming the fix.
    """
    name = architecture_name(model_spec)
    if name is not None:
        return f"catalogue:{name}", config_from_dict(catalogue()[name]["config"])
    folder = None
    if model_spec.path:
        folder = Path(model_spec.path).expanduser()
    elif model_spec.asset:
        from harness.models import resolve_model

        folder = Path(resolve_model(model_spec).location)
    elif model_spec.hub:
        from harness.models.hub import config_folder

        folder = config_folder(model_spec.hub, model_spec.revision)
    if folder is not None and (folder / "config.json").is_file():
        from transformers import AutoConfig

        return f"config.json:{folder}", AutoConfig.from_pretrained(folder)
    source = model_spec.hub or model_spec.path or model_spec.asset
    raise ArchitectureUnknownError(
        f"no architecture for model {source!r}: it is not in the catalogue "
        f"({', '.join(catalogue())}) and has no local config.json (a hub model is read from the "
        "local Hugging Face cache once downloaded). Add its config values as "
        f"harness/models/architectures/<name>.json (see the others), or set `architecture:` on the model."
    )


for _name, _entry in catalogue().items():  # a suite's `architecture:` is checked against these
    ARCHITECTURES.register(_name)(_entry)
