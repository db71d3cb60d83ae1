"""Scores per embedding width from the store: the query (`ftbench show`, `export` and the
dashboard's Embeddings page read it) and the plain-text table `ftbench show` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EMBEDDING_SQL = """
SELECT r.suite, r.dataset_key AS dataset, r.model_key AS model, r.method_key AS method,
       e.name AS metric, e.dim,
       avg(e.value) FILTER (WHERE e.model_state = 'base') AS base,
       avg(e.value) FILTER (WHERE e.model_state = 'tuned') AS tuned,
       tuned - base AS delta,
       avg(e.share_of_full) FILTER (WHERE e.model_state = 'base') AS base_share_of_full,
       avg(e.share_of_full) FILTER (WHERE e.model_state = 'tuned') AS tuned_share_of_full,
       count(DISTINCT r.run_id) AS n
FROM embedding_metrics e JOIN runs r USING (run_id)
WHERE ($suite IS NULL OR r.suite = $suite) AND e.split = 'test' AND r.status = 'ok'
    AND coalesce(r.origin, 'run') <> 'trial'
GROUP BY ALL
ORDER BY r.suite, dataset, model, metric, e.dim DESC, method
"""


def embedding_table(db_path: Path | str, suite: str | None = None):
    """Per (suite, dataset, model, method, metric, dim): base and tuned test scores (mean over
    seeds), tuned - base, and the share of the full-width score kept at that width; empty when
    no embedding run was ever stored."""
    from harness import store

    return store.query_result_table(db_path, "embedding_metrics", EMBEDDING_SQL, {"suite": suite})


def format_embedding_table(frame: Any, metric: str = "ndcg@10") -> str:
    """One block per dataset/model: a row per method, a column per width, `base -> tuned`
    (the untrained `base` method has no tuned score), and the tuned share of full-width score."""
    rows = frame[frame["metric"] == metric]
    blocks = []
    for (dataset, model), part in rows.groupby(["dataset", "model"], sort=True):
        dims = sorted(part["dim"].unique(), reverse=True)
        lines = [
            f"{metric} per embedding width (test, base -> tuned; [share of full width]) "
            f"-- {dataset} / {model}",
            f"{'method':<14}" + "".join(f"{d:>22}" for d in dims),
        ]
        for method, per_method in part.groupby("method", sort=True):
            by_dim = per_method.set_index("dim")
            cells = []
            for d in dims:
                if d not in by_dim.index:
                    cells.append(f"{'-':>22}")
                    continue
                row = by_dim.loc[d]
                if row["tuned"] != row["tuned"]:  # NaN: an untrained row
                    text = f"{row['base']:.4f} [{row['base_share_of_full']:.2f}]"
                else:
                    text = (
                        f"{row['base']:.4f}->{row['tuned']:.4f} [{row['tuned_share_of_full']:.2f}]"
                    )
                cells.append(f"{text:>22}")
            lines.append(f"{method:<14}" + "".join(cells))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
