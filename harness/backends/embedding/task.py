"""The `retrieval` task: anchor -> positive pairs (optional hard negative), scored by retrieval."""

from __future__ import annotations

from harness.suite.metrics import Metric
from harness.suite.tasks import TASKS, Task


@TASKS.register_instance("retrieval")
class Retrieval(Task):
    """Queries (anchors) retrieve their positives from a corpus of positives; the embedding backend
    trains and scores it (harness/backends/embedding/backend.py), so there is no SFT example here."""

    record_fields = ("anchor", "positive")  # plus an optional `negative` (a hard negative)
    split_key = "anchor"
    # A positive shared by two anchors keeps both in one split: a test query's positive is never
    # a training pair.
    group_fields = ("positive",)
    metrics = (
        Metric("ndcg@10", True, "normalized discounted cumulative gain of the top 10"),
        Metric("mrr@10", True, "mean reciprocal rank of the first relevant in the top 10"),
        Metric("recall@10", True, "share of relevant documents found in the top 10"),
    )
    primary_metric = "ndcg@10"
    backend = "embedding"
