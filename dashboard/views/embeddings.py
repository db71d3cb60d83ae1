"""Embeddings: per-dimension embedding metrics, once a suite writes `embedding_metrics`."""

from __future__ import annotations

from dashboard import ui

ui.empty_state_page(
    "embedding_metrics",
    "Embeddings",
    "No embedding metrics yet — run a suite with an embedding task (e.g. `ftbench run <suite>` "
    "with an `all-minilm-l6-v2` model); its per-dimension metrics will show up here.",
)
