"""Sentence-embedding fine-tuning: the `retrieval` task, its data sources, methods and backend.

Models are SentenceTransformers trained with MultipleNegativesRankingLoss, optionally wrapped in
MatryoshkaLoss, and scored by retrieval (NDCG@10, MRR@10, Recall@10) at each truncated width.
"""

from harness.embedding import backend, data, methods, task  # noqa: F401  (registers them)
