"""Full fine-tuning: every weight of the SentenceTransformer trains."""

from typing import Any

from harness.backends.embedding.methods.base import EmbeddingMethod, TrainParams, register


@register("full")
class Full(EmbeddingMethod):
    def setup(self, model: Any, params: TrainParams) -> dict[str, Any]:
        model.requires_grad_(True)
        return {}
