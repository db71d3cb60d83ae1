"""Suite locks: `ftbench lock suites/X.yaml` pins a suite's resolved runs and its inputs.

The lock file (suites/X.lock.json by default) holds the suite with every default filled, each
run's spec as the plan resolved it (budget adjustments and upstream stages included, so the
run_ids are the ones `ftbench run` records) and the identity of every input: per model its id, revision,
source file hash and a hash of the weight files actually loaded (or the hub commit), per dataset
the fingerprint of its splits. `ftbench run X.lock.json` runs exactly the locked specs and refuses,
naming the input, when a model or dataset no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.suite.spec import RunSpec
from harness.suite.suite_file import Suite

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.json"


class LockError(RuntimeError):
    """A lock cannot be made or used; the message names the file, the input and the fix."""


def default_lock_path(suite_path: Path) -> Path:
    return suite_path.with_name(suite_path.stem + LOCK_SUFFIX)


def _weights_sha256(folder: Path) -> str | None:
    """One hash over the weight files of a local model folder (names and contents)."""
    from harness.models import file_sha256

    files = sorted(folder.rglob("*.safetensors")) or sorted(folder.rglob("*.bin"))
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(folder)}:{file_sha256(f)}\n".encode())
    return digest.hexdigest()


def model_identity(model: Any) -> dict[str, Any]:
    """What identifies a model's weights here; raises ModelUnavailableError if it cannot be had."""
    from harness.models import resolve_model

    resolved = resolve_model(model)
    prov = resolved.provenance
    identity = {
        "model_id": prov.get("model_id"),
        # as the suite asked for it (a hub model's branch); the commit it resolved to follows
        "model_revision": prov.get("model_revision_requested", prov.get("model_revision")),
        "model_source": prov.get("source"),
        "model_file_sha256": prov.get("model_file_sha256"),
    }
    if prov.get("source") == "hub":
        identity["hub_commit"] = resolved.revision  # the snapshot a run loads: `main` moves
    else:
        identity["weights_sha256"] = _weights_sha256(Path(resolved.location))
    return identity


def dataset_identity(dataset: Any) -> dict[str, Any]:
    from harness.backends.data import load_splits

    splits = load_splits(dataset)
    return {
        "fingerprint": splits.fingerprint,
        "split_sizes": {k: len(v) for k, v in splits.as_dict().items()},
    }


def _inputs(specs: list[RunSpec]) -> tuple[dict[str, Any], list[str]]:
    from harness.backends.data import DataUnavailableError
    from harness.models import ModelUnavailableError

    models: dict[str, Any] = {}
    datasets: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        if spec.model_key not in models:
            try:
                models[spec.model_key] = model_identity(spec.model)
            except ModelUnavailableError as exc:
                models[spec.model_key] = None
                problems.append(f"models.{spec.model_key}: {exc}")
        if spec.dataset_key not in datasets:
            try:
                datasets[spec.dataset_key] = dataset_identity(spec.dataset)
            except DataUnavailableError as exc:
                datasets[spec.dataset_key] = None
                problems.append(f"datasets.{spec.dataset_key}: {exc}")
    return {"models": models, "datasets": datasets}, problems


def make_lock(plan: Any) -> dict[str, Any]:
    """A suite's plan (harness.plan.plan.Plan) with its inputs resolved; raises LockError when an
    input cannot be had here."""
    suite, specs, suite_path = plan.suite, plan.specs, plan.source
    inputs, problems = _inputs(specs)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise LockError(
            f"{suite_path}: cannot lock inputs that are not available here "
            f"(lock it where they are):\n{lines}"
        )
    return {
        "ftbench_lock": LOCK_VERSION,
        "suite_file": str(suite_path),
        "suite_file_sha256": hashlib.sha256(suite_path.read_bytes()).hexdigest(),
        "suite": suite.model_dump(mode="json"),
        "inputs": inputs,
        "runs": [
            {"run_id": s.run_id, "label": s.label, "spec": s.model_dump(mode="json")} for s in specs
        ],
    }


def write_lock(plan: Any, out: Path | None = None) -> Path:
    lock = make_lock(plan)
    out = out or default_lock_path(plan.source)
    out.write_text(json.dumps(lock, indent=2, sort_keys=False) + "\n")
    return out


def read_lock(path: Path) -> tuple[Suite, list[RunSpec], dict[str, Any]]:
    """The locked suite and specs, unchecked (see verify)."""
    if not path.is_file():
        raise LockError(f"{path}: no such lock file (make one with `ftbench lock SUITE.yaml`)")
    try:
        lock = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LockError(f"{path}: not valid JSON: {exc}") from None
    if lock.get("ftbench_lock") != LOCK_VERSION:
        raise LockError(
            f"{path}: lock format {lock.get('ftbench_lock')!r} is not {LOCK_VERSION}: re-create "
            f"it with `ftbench lock {lock.get('suite_file', 'SUITE.yaml')}`"
        )
    suite = Suite.model_validate(lock["suite"])
    specs = []
    for entry in lock["runs"]:
        spec = RunSpec.model_validate(entry["spec"])
        if spec.run_id != entry["run_id"]:
            raise LockError(
                f"{path}: run {entry['label']} resolves to run_id {spec.run_id}, locked as "
                f"{entry['run_id']} (made by another ftbench version?): re-create the lock"
            )
        specs.append(spec)
    return suite, specs, lock


def _differences(kind: str, key: str, locked: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [
        f"{kind}.{key}.{field}: locked {locked.get(field)!r}, now {now.get(field)!r}"
        for field in sorted(locked.keys() | now.keys())
        if field != "split_sizes" and locked.get(field) != now.get(field)
    ]


def verify(path: Path, specs: list[RunSpec], lock: dict[str, Any]) -> None:
    """Re-resolve every input; raise LockError listing each one that no longer matches."""
    # An input that cannot be had here at all is not a mismatch: its runs are recorded as
    # skipped, with the reason, like any run of a suite that needs what is missing.
    inputs, _unavailable = _inputs(specs)
    problems: list[str] = []
    for kind in ("models", "datasets"):
        for key, now in inputs[kind].items():
            locked = lock["inputs"][kind].get(key)
            if locked is None or now is None:
                continue
            problems += _differences(kind, key, locked, now)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise LockError(
            f"{path}: the inputs no longer match the lock, nothing runs:\n{lines}\n"
            f"If the change is intended, re-create the lock: "
            f"`ftbench lock {lock.get('suite_file', 'SUITE.yaml')}`"
        )


def load_locked(path: Path) -> tuple[Suite, list[RunSpec]]:
    suite, specs, lock = read_lock(path)
    verify(path, specs, lock)
    return suite, specs
