"""Retrieval scoring with sentence-transformers' InformationRetrievalEvaluator at each width.

Queries are the evaluation split's anchors; the corpus is every positive (and hard negative) of
the training split plus the evaluation split, as in the usual recipe, so training documents are
distractors but no evaluation pair was trained on. Queries and corpus are encoded once at full
width per model; each truncate_dim slices those embeddings (what `encode(truncate_dim=d)` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.backends.data import Record
from harness.store.result import LEGACY_TABLES, ResultTable

K = 10
NAMES = {"ndcg@10": "ndcg@k", "mrr@10": "mrr@k", "recall@10": "recall@k"}


@dataclass(frozen=True)
class RetrievalSet:
    queries: dict[str, str]  # qid -> anchor
    corpus: dict[str, str]  # did -> document
    relevant: dict[str, set[str]]  # qid -> dids of its positives


def retrieval_set(train: list[Record], evaluated: list[Record]) -> RetrievalSet:
    documents: dict[str, str] = {}
    for record in [*train, *evaluated]:
        for field in ("positive", "negative"):
            if record.get(field):
                documents.setdefault(record[field], f"d{len(documents)}")
    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for record in evaluated:
        qid = queries.setdefault(record["anchor"], f"q{len(queries)}")
        relevant.setdefault(qid, set()).add(documents[record["positive"]])
    return RetrievalSet(
        {qid: text for text, qid in queries.items()},
        {did: text for text, did in documents.items()},
        relevant,
    )


def _evaluator_class():
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    class TruncatingEvaluator(InformationRetrievalEvaluator):
        """Encodes once at full width, then serves each truncate_dim as a slice."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.full: dict[str | None, Any] = {}
            self.widths: dict[int, int] = {}

        def embed_inputs(self, model, sentences, encode_fn_name=None, **kwargs):
            if encode_fn_name not in self.full:
                dim, self.truncate_dim = self.truncate_dim, None
                self.full[encode_fn_name] = super().embed_inputs(
                    model, sentences, encode_fn_name, **kwargs
                )
                self.truncate_dim = dim
            full = self.full[encode_fn_name]
            if len(full) != len(sentences):  # one corpus chunk only (corpus_chunk_size)
                raise AssertionError("the corpus must be encoded in one chunk")
            out = full if self.truncate_dim is None else full[:, : self.truncate_dim]
            self.widths[self.truncate_dim or full.shape[1]] = int(out.shape[1])
            return out

    return TruncatingEvaluator


def evaluate_at_dims(
    model: Any, data: RetrievalSet, dims: list[int], batch_size: int
) -> tuple[dict[int, dict[str, float]], dict[int, int]]:
    """dim -> {ndcg@10, mrr@10, recall@10}, and dim -> the embedding width actually scored."""
    evaluator = _evaluator_class()(
        data.queries,
        data.corpus,
        data.relevant,
        corpus_chunk_size=max(len(data.corpus), 1),
        mrr_at_k=[K],
        ndcg_at_k=[K],
        accuracy_at_k=[K],
        precision_recall_at_k=[K],
        map_at_k=[K],
        batch_size=batch_size,
        write_csv=False,
        score_functions={model.similarity_fn_name: model.similarity},
    )
    scores: dict[int, dict[str, float]] = {}
    for dim in dims:
        evaluator.truncate_dim = dim
        result = evaluator.compute_all_metrics(model)[model.similarity_fn_name]
        scores[dim] = {name: float(result[key][K]) for name, key in NAMES.items()}
    return scores, evaluator.widths


# Per width, for the untouched (`base`) and the trained (`tuned`) model: a table of its own in the
# store (one row per run, split, model state, width and metric).
EMBEDDING_METRICS = ResultTable(
    columns={
        "split": "VARCHAR",
        "model_state": "VARCHAR",
        "dim": "INTEGER",
        "name": "VARCHAR",
        "value": "DOUBLE",
        "share_of_full": "DOUBLE",
    },  # fmt: skip
    key=["split", "model_state", "dim", "name"],
)
LEGACY_TABLES["embedding_metrics"] = EMBEDDING_METRICS  # its key in result.json before tables


def long_rows(
    scores: dict[int, dict[str, float]], split: str, state: str, full: int
) -> list[dict[str, Any]]:
    """One row per (dim, metric), with the share of the full-width score kept at that dim."""
    rows = []
    for dim, values in scores.items():
        for name, value in values.items():
            base = scores[full][name]
            rows.append({
                "split": split, "model_state": state, "dim": dim, "name": name, "value": value,
                "share_of_full": value / base if base else None,
            })  # fmt: skip
    return rows
