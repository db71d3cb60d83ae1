"""The plain-text table of scores per embedding width that `ftbench show` prints (the store's
harness.store.browse.embedding_scores; the dashboard's Embeddings page reads the same)."""

from __future__ import annotations

from typing import Any


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
