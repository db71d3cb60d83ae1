"""Methods for embedding models. Each file registers one method in EMBEDDING_METHODS."""

from harness.backends.embedding.methods.base import (
    EMBEDDING_METHODS,
    EmbeddingMethod,
    EvalParams,
    TrainParams,
)
from harness.suite.registry import import_submodules

import_submodules(__name__)

__all__ = ["EMBEDDING_METHODS", "EmbeddingMethod", "EvalParams", "TrainParams"]
