"""`--set KEY=VALUE`: change a suite's fields for one invocation without editing the file.

KEY is a dotted path into the suite file (`training.max_steps`, `datasets.rt.splits.train`,
`methods.lora.params.r`); VALUE is read as YAML (`50`, `2.0e-4`, `[lora, full]`, `true`). The
overrides apply to the file's content before it is validated, so an overridden run is checked like
any other and, being a different spec, gets its own run_id; the suite records them (`overrides:`,
kept in the lock file and the stored suite config).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml


class OverrideError(ValueError):
    """A --set argument that cannot be applied; the message names it."""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise OverrideError(f"--set {item!r}: write KEY=VALUE, e.g. training.max_steps=50")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OverrideError(f"--set {item!r}: the value is not valid YAML: {exc}") from None
        parts = key.strip().split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise OverrideError(
                    f"--set {item!r}: {where} is a {type(child).__name__}, not a mapping: set "
                    f"{where} itself (e.g. {where}=[a, b])"
                )
            node = child
        node[parts[-1]] = value
    return out
