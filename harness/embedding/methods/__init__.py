"""Methods for embedding models. Each file registers one method in EMBEDDING_METHODS."""

from harness.embedding.methods import freeze, full, lora, pretrained  # noqa: F401,I001
from harness.embedding.methods.base import (
    EMBEDDING_METHODS,
    EmbeddingMethod,
    EvalParams,
    TrainParams,
)

__all__ = ["EMBEDDING_METHODS", "EmbeddingMethod", "EvalParams", "TrainParams"]
