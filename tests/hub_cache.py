"""A local Hugging Face cache laid out the way an online download leaves it, for offline tests.

Models: `HF_HUB_CACHE/models--ORG--NAME/{blobs/, snapshots/COMMIT/ -> ../../blobs/..., refs/main}`,
what `huggingface_hub.snapshot_download` and transformers' `from_pretrained` read with
HF_HUB_OFFLINE=1 (a branch name is looked up in refs/, a commit in snapshots/).

Datasets: offline, `datasets.load_dataset("ORG/NAME")` (datasets 5.2.0) never reads the hub
cache: it falls back to the *prepared* Arrow cache,
`HF_DATASETS_CACHE/ORG___NAME/CONFIG/0.0.0/COMMIT/` (`CachedDatasetModuleFactory` and the
`cache` builder). So each dataset is written twice, as an online load would: its repo files
(README with `configs:`, parquet shards carrying the features) in the hub cache, and the prepared
Arrow cache made from that snapshot by the same builder steps `load_dataset_builder` takes
(module from the repo's README, builder class, `download_and_prepare`, hash = the commit).

The weights are random (4 blocks of width 64) and the tokenizer is the tiny test one (512
tokens): plumbing only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Shape-setting config values for every tiny stand-in (llama, qwen2, mistral share the names).
TINY_CONFIG = {
    "hidden_size": 64,  # bitsandbytes' 4-bit blocks are 64 wide
    "intermediate_size": 128,
    "num_hidden_layers": 4,  # peft_t4 freezes all but the last 4 blocks
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
}


def commit_hash(*parts: str) -> str:
    """A 40-hex id that looks like (and is resolved as) a git commit."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _blob_id(data: bytes, lfs: bool) -> str:
    # The hub's etags: sha256 for LFS files (weights, parquet), the git blob sha1 otherwise.
    if lfs:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_snapshot(
    hub_cache: Path, repo_type: str, repo_id: str, files: Path, commit: str, ref: str = "main"
) -> Path:
    """Copy the files under `files` into the cache as snapshot `commit` and point `ref` at it."""
    repo = hub_cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo / "blobs" / _blob_id(data, path.suffix in (".safetensors", ".parquet"))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    point_ref(hub_cache, repo_type, repo_id, commit, ref)
    return snapshot


def point_ref(
    hub_cache: Path, repo_type: str, repo_id: str, commit: str, ref: str = "main"
) -> None:
    ref_file = hub_cache / f"{repo_type}s--{repo_id.replace('/', '--')}" / "refs" / ref
    ref_file.parent.mkdir(parents=True, exist_ok=True)
    ref_file.write_text(commit)  # no newline: huggingface_hub reads the file as the hash


def build_tiny_model(model_type: str, tokenizer_dir: Path, out: Path, seed: int) -> None:
    """A random 2-layer causal LM of `model_type` with the tiny test tokenizer, saved to `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


@dataclass(frozen=True)
class DatasetShape:
    """A hub dataset's layout: its config name, splits and features (as the real one has)."""

    config: str
    features: dict[str, Any]  # column -> "string" | "int32" | ["name", ...] (a ClassLabel)
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def hf_features(self):
        from datasets import ClassLabel, Features, Value

        return Features(
            {
                name: ClassLabel(names=kind) if isinstance(kind, list) else Value(kind)
                for name, kind in self.features.items()
            }
        )


def add_dataset(
    hub_cache: Path, datasets_cache: Path, repo_id: str, shape: DatasetShape, commit: str
) -> Path:
    """The dataset repo in the hub cache and its prepared Arrow cache; returns the latter."""
    import yaml
    from datasets import Dataset
    from datasets.load import LocalDatasetModuleFactory, get_dataset_builder_class

    files = datasets_cache.parent / f".repo-{repo_id.replace('/', '--')}-{commit[:8]}"
    shutil.rmtree(files, ignore_errors=True)
    configs = [
        {
            "config_name": shape.config,
            "data_files": [
                {"split": split, "path": f"{shape.config}/{split}-*"} for split in shape.splits
            ],
        }
    ]
    (files / shape.config).mkdir(parents=True)
    (files / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': configs})}---\n")
    for split, rows in shape.splits.items():
        Dataset.from_list(rows, features=shape.hf_features()).to_parquet(
            files / shape.config / f"{split}-00000-of-00001.parquet"
        )
    snapshot = add_snapshot(hub_cache, "dataset", repo_id, files, commit)
    shutil.rmtree(files)

    # What load_dataset_builder does online, with the module read from the cached snapshot. The
    # builder refuses a repo_id whose files are not hf:// URLs, so it prepares under the bare
    # name and the folder moves to the namespaced one (ORG___NAME) an online load writes.
    module = LocalDatasetModuleFactory(str(snapshot)).get_module()
    name = repo_id.split("/")[-1]
    kwargs = {**module.builder_kwargs, "dataset_name": name}
    staging = datasets_cache / ".staging"
    builder = get_dataset_builder_class(module, dataset_name=name)(
        cache_dir=str(staging), config_name=shape.config, hash=commit, **kwargs
    )
    builder.download_and_prepare()
    prepared = Path(builder.cache_dir)
    target = datasets_cache / repo_id.replace("/", "___") / prepared.relative_to(staging / name)
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared.rename(target)
    shutil.rmtree(staging)
    return target


@dataclass
class HubCache:
    """Where the fixture cache lives, and the environment that points the libraries at it."""

    root: Path
    commits: dict[str, str] = field(default_factory=dict)  # repo id -> commit of refs/main

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def env(self) -> dict[str, str]:
        return {
            "HF_HOME": str(self.root),
            "HF_HUB_CACHE": str(self.hub),
            "HF_DATASETS_CACHE": str(self.datasets),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }

    def activate(self, monkeypatch: Any) -> None:
        """Point this process and the run subprocesses (which inherit the environment) here.

        huggingface_hub and datasets read their cache paths once, at import: the module
        constants are patched too."""
        import datasets.config
        import huggingface_hub.constants

        from harness.models.offline import hub_reachable

        for key, value in self.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(self.hub))
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", self.datasets)
        hub_reachable.cache_clear()
