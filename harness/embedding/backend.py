"""The `embedding` backend: SentenceTransformer fine-tuning with (Matryoshka) MNRL.

One run loads the model, scores the untouched model at every width (the `base` rows), lets the
method mark what trains, trains with sentence-transformers' trainer (no-duplicates batches, which
in-batch-negative losses need) and scores the tuned model at every width (the `tuned` rows).
The headline metrics (full width, tuned; base for the `base` method) go to the normal metrics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness import checks
from harness.backends import BACKENDS, Backend
from harness.data import Splits, load_splits
from harness.embedding.evaluate import RetrievalSet, evaluate_at_dims, long_rows, retrieval_set
from harness.embedding.methods import EMBEDDING_METHODS
from harness.embedding.methods.base import check_dims
from harness.models import ResolvedModel, resolve_model
from harness.registry import Registry
from harness.suite import RunSpec
from harness.train import (
    RunOutput,
    early_stop,
    finish_run,
    loss_curve_callbacks,
    save_trained_weights,
    start_run,
    trainer_kwargs,
)


def load_sentence_transformer(resolved: ResolvedModel, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        resolved.location, device=device, **resolved.from_pretrained_kwargs()
    )


def _training_args(spec: RunSpec, out_dir: Path, device: str) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    # fp16 only on a GPU (the T4 budget allows no bf16; the suite check rejects it there).
    return SentenceTransformerTrainingArguments(
        **trainer_kwargs(spec, out_dir, device),
        # In-batch negatives: a duplicate text in a batch would be a false negative.
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )


def _loss(model: Any, matryoshka_dims: list[int] | None) -> Any:
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    mnrl = MultipleNegativesRankingLoss(model)
    return MatryoshkaLoss(model, mnrl, matryoshka_dims) if matryoshka_dims else mnrl


def _train_rows(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """anchor, positive (and negative where every record has one): MNRL reads columns in order."""
    fields = ["anchor", "positive"]
    if records and all(r.get("negative") for r in records):
        fields.append("negative")
    return [{f: r[f] for f in fields} for r in records]


def _data_checks(splits: Splits, model: Any) -> dict[str, Any]:
    data = {
        **checks.split_overlap(splits.as_dict(), "anchor"),
        **checks.tokenizer_checks(model.tokenizer),
    }
    data["positive_overlap"] = checks.split_overlap(splits.as_dict(), "positive")["overlap"]
    texts = [r[f] for r in splits.train for f in ("anchor", "positive")]
    lengths = [len(ids) for ids in model.tokenizer(texts)["input_ids"]] if texts else []
    data["max_length"] = model.max_seq_length
    data["truncated_share"] = checks.truncation_share(lengths, model.max_seq_length)
    data["max_tokens"] = max(lengths, default=None)
    found = checks.issues(data)
    found += [
        f"{n} {split} positives also in train" for split, n in data["positive_overlap"].items() if n
    ]
    data["issues"] = found
    return data


@BACKENDS.register_instance("embedding")
class EmbeddingBackend(Backend):
    """Sentence embeddings trained with sentence-transformers and scored by retrieval per width."""

    @property
    def methods(self) -> Registry[Any]:
        return EMBEDDING_METHODS

    def run(self, spec, out_dir, progress_path=None, extra_callbacks=None):
        return run_embedding(spec, out_dir, progress_path, extra_callbacks)


def run_embedding(
    spec: RunSpec,
    out_dir: Path,
    progress_path: Path | None = None,
    extra_callbacks: list | None = None,
) -> RunOutput:
    started, device = start_run(spec)

    method = EMBEDDING_METHODS.get(spec.method)
    params = method.Params.model_validate(spec.params)
    resolved = resolve_model(spec.model)
    splits = load_splits(spec.dataset)
    model = load_sentence_transformer(resolved, device)
    model.max_seq_length = min(spec.training.max_length, model.max_seq_length or 1 << 30)
    width = model.get_embedding_dimension()
    dims = check_dims(params, width, f"methods.{spec.method_key}", spec.model_key)
    data_checks = _data_checks(splits, model)
    # A tuning trial is scored on validation only; the test split is for final runs.
    split = "validation" if spec.trial else "test"
    evaluated = splits.validation if spec.trial else splits.test
    data = retrieval_set(splits.train, evaluated)
    batch = spec.training.eval_batch_size
    load_s = time.perf_counter() - started

    t0 = time.perf_counter()
    base_scores, widths = evaluate_at_dims(model, data, dims, batch)
    base_eval_s = time.perf_counter() - t0
    rows = long_rows(base_scores, split, "base", width)
    notes = method.setup(model, params)
    matryoshka = getattr(params, "matryoshka_dims", None)
    notes.update(
        embedding_width=width, eval_dims=dims, scored_widths=widths,
        matryoshka_dims=matryoshka,
        loss=None if not method.trains else "MatryoshkaLoss(MNRL)" if matryoshka else "MNRL",
        corpus_size=len(data.corpus), queries=len(data.queries),
    )  # fmt: skip

    curve: list[dict[str, Any]] = []
    reporter = _reporter(spec, data, width, batch)
    train_s = 0.0
    trained = method.trains and spec.training.max_steps > 0
    if trained:
        callbacks = loss_curve_callbacks(curve, progress_path) + ([reporter] if reporter else [])
        train_s, steps, model = _train(
            spec, model, splits, matryoshka, out_dir, device, callbacks + (extra_callbacks or [])
        )
        pairs = steps * spec.training.batch_size * spec.training.grad_accum
        notes["pairs_per_s"] = pairs / train_s if train_s > 0 else None

    status, reason = early_stop(curve, reporter, spec)
    metrics: dict[str, float] = {}
    t0 = time.perf_counter()
    if status == "ok":
        scores = base_scores
        if trained:
            scores, _ = evaluate_at_dims(model, data, dims, batch)
            rows += long_rows(scores, split, "tuned", width)
        metrics = scores[width]
    eval_s = time.perf_counter() - t0 + base_eval_s

    artifact_bytes = None
    if status == "ok" and trained and spec.training.save_weights:
        artifact_bytes = save_trained_weights(model, out_dir / "weights")
    extra = {
        "train_tokens": None,
        "tokens_per_s": None,
        "artifact_bytes": artifact_bytes,
        "notes": notes,
        "data_checks": data_checks,
        "embedding_metrics": rows if status == "ok" else [],
    }
    return finish_run(
        spec, model, resolved, splits, device, reporter,
        started=started, timings={"load_s": load_s, "train_s": train_s, "eval_s": eval_s},
        metrics=metrics, curve=curve, extra=extra, split=split, status=status, reason=reason,
    )  # fmt: skip


def _reporter(spec: RunSpec, data: RetrievalSet, width: int, batch: int) -> Any:
    """Optuna reports for a tuning trial: the full-width validation score at intervals."""
    if spec.trial is None:
        return None
    from harness.tune_report import TrialReporter

    return TrialReporter(spec.trial, lambda m: evaluate_at_dims(m, data, [width], batch)[0][width])


def _train(
    spec: RunSpec,
    model: Any,
    splits: Splits,
    matryoshka_dims: list[int] | None,
    out_dir: Path,
    device: str,
    callbacks: list,
) -> tuple[float, int, Any]:
    """Train; return the seconds, the optimizer steps taken and the trained model."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    trainer = SentenceTransformerTrainer(
        model=model,
        args=_training_args(spec, out_dir, device),
        train_dataset=Dataset.from_list(_train_rows(splits.train)),
        loss=_loss(model, matryoshka_dims),
        callbacks=callbacks,
    )
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0, trainer.state.global_step, trainer.model
