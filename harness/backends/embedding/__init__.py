"""The `embedding` backend: sentence-embedding fine-tuning for the `retrieval` task.

Models are SentenceTransformers trained with MultipleNegativesRankingLoss, optionally wrapped in
MatryoshkaLoss, and scored by retrieval (NDCG@10, MRR@10, Recall@10) at each truncated width.

- backend.py   the phases of a run
- evaluate.py  retrieval scoring per width, and the per-width result table it declares
- methods/     one file per method (base, full, lora, freeze)
- task.py      the `retrieval` task;  data.py  offline retrieval data sources
- report.py    the per-width table of `ftbench show` and the dashboard's Embeddings page
"""

from harness.suite.registry import import_submodules

import_submodules(__name__)
