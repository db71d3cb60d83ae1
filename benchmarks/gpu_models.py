"""Systems-only models for a GPU machine without the hub: a tokenizer folder and random checkpoints.

    python benchmarks/gpu_models.py DIR [ARCH ...] [--tokenizer FOLDER]

DIR/tok gets the tokenizer files of the tiny-random-llama asset (a 512-token vocabulary: valid ids
for every catalogued architecture), taken from FOLDER when given (`make gpu-kit` puts them in
.gpu-kit/tokenizer) or from the asset, built locally. DIR/ARCH gets a random fp16 checkpoint of
each catalogued architecture (harness/models/architectures) with the same tokenizer beside it,
built on the GPU when there is one: QLoRA needs weights on disk (4-bit layers are made by
loading), and loading a saved checkpoint is faster than building a model on the CPU per run. A
suite points at them with `{path: DIR/tok, architecture: ARCH, weights: random}` or
`{path: DIR/ARCH, architecture: ARCH}`. Checkpoints already there are kept.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EXTRA_TOKENIZER_FILES = ("special_tokens_map.json", "chat_template.jinja")


def tokenizer_files(folder: Path) -> list[Path]:
    """The files of a saved tokenizer in a model folder (not its weights or config)."""
    return sorted(
        f for f in folder.iterdir()
        if f.name.startswith("tokenizer") or f.name in EXTRA_TOKENIZER_FILES
    )  # fmt: skip


def tiny_tokenizer_folder() -> Path:
    """The tiny-random-llama asset's folder (built locally on first use)."""
    from harness.models import MODEL_ASSETS

    return Path(MODEL_ASSETS.get("tiny-random-llama").resolve().location)


def copy_tokenizer(source: Path, folder: Path) -> None:
    files = tokenizer_files(source)
    if not files:
        raise SystemExit(f"{source}: no tokenizer files (tokenizer*.json); rebuild `make gpu-kit`")
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, folder / f.name)


def make_models(models_dir: Path, archs: list[str], tokenizer: Path | None = None) -> None:
    """The tokenizer folder and a random fp16 checkpoint per architecture (on CUDA when present)."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.models.architectures import catalogue, config_from_dict

    source = tokenizer or tiny_tokenizer_folder()
    for folder in [models_dir / "tok", *(models_dir / a for a in archs)]:
        copy_tokenizer(source, folder)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for arch in archs:
        if (models_dir / arch / "config.json").exists():
            continue
        started = time.perf_counter()
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(
                config_from_dict(catalogue()[arch]["config"]), dtype=torch.float16
            )
        model.save_pretrained(models_dir / arch)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
        print(
            f"saved a random {arch} checkpoint in {time.perf_counter() - started:.0f} s", flush=True
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("archs", nargs="*", help="catalogued architectures to save")
    parser.add_argument("--tokenizer", type=Path, help="a folder with the tokenizer files")
    args = parser.parse_args(argv)
    from harness.models.architectures import catalogue

    unknown = sorted(set(args.archs) - set(catalogue()))
    if unknown:
        raise SystemExit(f"unknown architecture(s) {unknown}; known: {sorted(catalogue())}")
    make_models(args.dir, args.archs, args.tokenizer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
