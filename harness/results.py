"""The result.json of a run: run_info / train_info / meta_info, written atomically."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATUSES = ("ok", "failed", "oom", "diverged", "timeout", "skipped", "pruned", "over_budget")
# `over_budget` (predicted not to fit the suite's memory budget) is not final: the verdict is
# taken again on every run of the suite, so a better estimate or a bigger budget lets it run.
# A result with one of these is final: a re-run skips it unless forced. `failed` is retried.
FINAL_STATUSES = frozenset({"ok", "diverged", "oom", "timeout", "pruned"})
RESULT_FILE = "result.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def read_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def make_result(
    spec: Any,
    status: str,
    *,
    reason: str | None = None,
    traceback: str | None = None,
    started_at: str | None = None,
    output: Any = None,
) -> dict[str, Any]:
    assert status in STATUSES, status
    train_info: dict[str, Any] = {"status": status, "reason": reason, "traceback": traceback}
    if output is not None:
        if output.metrics:
            train_info["metrics"] = {output.split: output.metrics}
        train_info.update(
            curve=output.curve,
            timings=output.timings,
            params=output.params,
            memory=output.memory,
            **output.extra,
        )
    return {
        "run_id": spec.run_id,
        "run_info": {
            "spec": spec.model_dump(mode="json"),
            "started_at": started_at,
            "finished_at": now(),
        },
        "train_info": train_info,
        "meta_info": output.meta if output is not None else {},
    }
