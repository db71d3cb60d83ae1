"""No training: the pretrained embedding model, scored like every trained row (the baseline)."""

from typing import Any

from harness.backends.embedding.methods.base import EmbeddingMethod, EvalParams, register


@register("base")
class Base(EmbeddingMethod):
    Params = EvalParams
    trains = False

    def setup(self, model: Any, params: EvalParams) -> dict[str, Any]:
        model.requires_grad_(False)
        return {}
