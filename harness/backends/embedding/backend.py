"""The phases of an embedding run: SentenceTransformer fine-tuning with (Matryoshka) MNRL.

Preparing loads the model and scores the untouched model at every width (the `base` rows), then
lets the method mark what trains; training uses sentence-transformers' trainer (no-duplicates
batches, which in-batch-negative losses need); evaluation scores the tuned model at every width
(the `tuned` rows). The headline metrics (full width, tuned; base for the `base` method) are the
run's metrics; every width goes to the declared `embedding_metrics` table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import BACKENDS, Backend, Evaluation, Prepared, RunContext, Trained, checks
from harness.backends.data import Splits, load_splits
from harness.backends.embedding.evaluate import (
    EMBEDDING_METRICS,
    RetrievalSet,
    evaluate_at_dims,
    long_rows,
    retrieval_set,
)
from harness.backends.embedding.methods import EMBEDDING_METHODS
from harness.backends.embedding.methods.base import check_dims
from harness.backends.trainer_args import trainer_kwargs
from harness.models import ResolvedModel, resolve_model
from harness.suite.registry import Registry


def load_sentence_transformer(resolved: ResolvedModel, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        resolved.location, device=device, **resolved.from_pretrained_kwargs()
    )


@dataclass
class EmbeddingPrepared(Prepared):
    data: RetrievalSet | None = None
    dims: list[int] = field(default_factory=list)
    width: int = 0
    base_scores: dict[int, dict[str, float]] = field(default_factory=dict)


def _training_args(run: RunContext) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    # fp16 only on a GPU (the T4 budget allows no bf16; the suite check rejects it there).
    return SentenceTransformerTrainingArguments(
        **trainer_kwargs(run.spec, run.out_dir, run.device),
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


def train_rows(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """anchor, positive (and negative where every record has one): MNRL reads columns in order."""
    fields = ["anchor", "positive"]
    if records and all(r.get("negative") for r in records):
        fields.append("negative")
    return [{f: r[f] for f in fields} for r in records]


def _data_checks(splits: Splits, model: Any) -> dict[str, Any]:
    """Tokenizer and truncation checks (the overlap of anchors and positives is the lifecycle's)."""
    texts = [r[f] for r in splits.train for f in ("anchor", "positive")]
    lengths = [len(ids) for ids in model.tokenizer(texts)["input_ids"]] if texts else []
    return {
        **checks.tokenizer_checks(model.tokenizer),
        "max_length": model.max_seq_length,
        "truncated_share": checks.truncation_share(lengths, model.max_seq_length),
        "max_tokens": max(lengths, default=None),
    }


def _trains(run: RunContext) -> bool:
    return run.method.trains and run.spec.training.max_steps > 0


@BACKENDS.register_instance("embedding")
class EmbeddingBackend(Backend):
    """Sentence embeddings trained with sentence-transformers and scored by retrieval per width."""

    @property
    def methods(self) -> Registry[Any]:
        return EMBEDDING_METHODS

    def prepare(self, run: RunContext) -> EmbeddingPrepared:
        spec, params = run.spec, run.params
        resolved = resolve_model(spec.model)
        splits = load_splits(spec.dataset)
        model = load_sentence_transformer(resolved, run.device)
        model.max_seq_length = min(spec.training.max_length, model.max_seq_length or 1 << 30)
        width = model.get_embedding_dimension()
        dims = check_dims(params, width, f"methods.{spec.method_key}", spec.model_key)
        data = retrieval_set(splits.train, splits.as_dict()[run.split])
        data_checks = _data_checks(splits, model)
        t0 = time.perf_counter()
        base_scores, widths = evaluate_at_dims(model, data, dims, spec.training.eval_batch_size)
        eval_s = time.perf_counter() - t0
        notes = run.method.setup(model, params)
        matryoshka = getattr(params, "matryoshka_dims", None)
        notes.update(
            embedding_width=width, eval_dims=dims, scored_widths=widths,
            matryoshka_dims=matryoshka,
            loss=None if not run.method.trains else "MatryoshkaLoss(MNRL)" if matryoshka else "MNRL",
            corpus_size=len(data.corpus), queries=len(data.queries),
        )  # fmt: skip
        return EmbeddingPrepared(
            model=model, resolved=resolved, splits=splits, data_checks=data_checks, notes=notes,
            eval_s=eval_s, data=data, dims=dims, width=width, base_scores=base_scores,
        )  # fmt: skip

    def train(self, run: RunContext, prepared: EmbeddingPrepared, callbacks: list) -> Trained:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformerTrainer

        if not _trains(run):
            return Trained(prepared.model)
        trainer = SentenceTransformerTrainer(
            model=prepared.model,
            args=_training_args(run),
            train_dataset=Dataset.from_list(train_rows(prepared.splits.train)),
            loss=_loss(prepared.model, getattr(run.params, "matryoshka_dims", None)),
            callbacks=callbacks,
        )
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        steps = trainer.state.global_step
        pairs = steps * run.spec.training.batch_size * run.spec.training.grad_accum
        return Trained(
            trainer.model, steps=steps, train_s=train_s,
            notes={"pairs_per_s": pairs / train_s if train_s > 0 else None},
        )  # fmt: skip

    def evaluate(
        self, run: RunContext, prepared: EmbeddingPrepared, model: Any, *, intermediate=False
    ) -> Evaluation:
        batch, width = run.spec.training.eval_batch_size, prepared.width
        if intermediate:  # a tuning trial's report: the full width is enough
            return Evaluation(evaluate_at_dims(model, prepared.data, [width], batch)[0][width])
        rows = long_rows(prepared.base_scores, run.split, "base", width)
        scores = prepared.base_scores
        if _trains(run):
            scores, _ = evaluate_at_dims(model, prepared.data, prepared.dims, batch)
            rows += long_rows(scores, run.split, "tuned", width)
        return Evaluation(scores[width], {"embedding_metrics": EMBEDDING_METRICS.with_rows(rows)})

    def report(self, db_path: Path, suite: str) -> str | None:
        from harness.backends.embedding.report import format_embedding_table
        from harness.store.browse import embedding_scores

        table = embedding_scores(db_path, suite)
        return None if table.empty else format_embedding_table(table)
