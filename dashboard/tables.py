"""Display frames built from data.py results: Pareto points and config diffs.

Pure pandas (no Streamlit, no database), so the pages stay thin and this stays testable. The
leaderboard itself is computed by the store (harness.store.leaderboard); pages only format it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.store.pareto import pareto_mask

GIB = 2**30

COST_AXES = {
    "peak memory (GiB)": "peak_mem_gib",
    "train time (s)": "train_s",
    "trainable params (%)": "trainable_pct",
}


def pareto_points(board: pd.DataFrame, higher_is_better: bool, cost: str) -> pd.DataFrame:
    """The store's leaderboard cells with a mean (quality) and the chosen cost, frontier flagged."""
    if board.empty:
        return pd.DataFrame()
    points = board[board["mean"].notna()].copy()
    points = points.assign(method=points["entry"], quality=points["mean"], cost=points[cost])
    points["on_frontier"] = pareto_mask(points["cost"], points["quality"], higher_is_better)
    return points.sort_values("cost").reset_index(drop=True)


def config_summary(config: Any, max_len: int = 300) -> str:
    """What distinguishes a method's runs, for a tooltip: method params and the key training knobs."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return config[:max_len]
    if not isinstance(config, Mapping):
        return ""
    training = config.get("training") or {}
    keys = ("learning_rate", "max_steps", "batch_size", "precision")
    parts = [f"{k}={training[k]}" for k in keys if k in training]
    params = json.dumps(config.get("params") or {}, sort_keys=True, separators=(",", ":"))
    text = f"params {params}; " + ", ".join(parts)
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{'training.learning_rate': 1e-4, ...}; lists stay whole (shown as JSON)."""
    if isinstance(config, Mapping):
        out: dict[str, Any] = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(config) if isinstance(config, list) else config}


MISSING = "∅"  # a key one run's config does not have at all


def config_diff(configs: Mapping[str, Any], only_differing: bool = True) -> pd.DataFrame:
    """Flattened configs side by side (rows: keys, columns: runs) plus a `differs` flag."""
    flat = {label: flatten(cfg) for label, cfg in configs.items()}
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    frame = pd.DataFrame(
        {label: [_cell(f.get(k, MISSING)) for k in keys] for label, f in flat.items()},
        index=pd.Index(keys, name="key"),
    )
    frame["differs"] = frame.nunique(axis=1, dropna=False) > 1 if len(frame.columns) else False
    return frame[frame["differs"]] if only_differing else frame


def _cell(value: Any) -> str:
    # One display type per column: st.dataframe cannot mix numbers and strings in a column.
    return value if isinstance(value, str) else json.dumps(value)


def budget_fit_text(fits: Any, mem_kind: str, budget_gb: float) -> str:
    """The leaderboard's `fits budget` cell from the store's verdict (None: not a CUDA peak)."""
    if fits is None or pd.isna(fits):
        return "n/a (CPU)" if mem_kind else "–"
    return "✅ fits" if fits else f"❌ > {budget_gb:.1f} GB"
