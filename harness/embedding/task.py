"""The `retrieval` task: anchor -> positive pairs (optional hard negative), scored by retrieval."""

from __future__ import annotations

from harness.tasks import TASKS, Task


@TASKS.register_instance("retrieval")
class Retrieval(Task):
    """Queries (anchors) retrieve their positives from a corpus of positives; the embedding backend
    trains and scores it (harness/embedding/backend.py), so there is no SFT example here."""

    record_fields = ("anchor", "positive")  # plus an optional `negative` (a hard negative)
    split_key = "anchor"
    # A positive shared by two anchors keeps both in one split: a test query's positive is never
    # a training pair.
    group_fields = ("positive",)
    metrics = ("ndcg@10", "mrr@10", "recall@10")
    primary_metric = "ndcg@10"
    backend = "embedding"
