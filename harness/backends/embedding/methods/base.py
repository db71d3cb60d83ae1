"""The embedding-method interface: mark what trains on a loaded SentenceTransformer.

Every method is evaluated at `eval_dims`; trained methods also take `matryoshka_dims` (the
MatryoshkaLoss widths; None trains plain MultipleNegativesRankingLoss, the no-Matryoshka baseline).
Widths are checked against the model at run time (check_dims), when the width is known.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from harness.suite.config import StrictModel
from harness.suite.registry import Registry

MIN_LADDER_DIM = 32


def _dims(dims: list[int]) -> list[int]:
    if any(d < 1 for d in dims):
        raise ValueError(f"dims must be positive integers (got {dims})")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims must not repeat (got {dims})")
    return sorted(dims, reverse=True)


Dims = Annotated[list[int], Field(min_length=1), AfterValidator(_dims)]


class EvalParams(StrictModel):
    # None: the full width and every power of two below it down to 32 (384 -> 384/256/128/64/32).
    eval_dims: Dims | None = None


class TrainParams(EvalParams):
    matryoshka_dims: Dims | None = None


def default_dims(width: int) -> list[int]:
    ladder, dim = [width], 1 << (width - 1).bit_length() - 1
    while dim >= MIN_LADDER_DIM:
        if dim < width:
            ladder.append(dim)
        dim //= 2
    return ladder


def check_dims(params: EvalParams, width: int, where: str, model: str) -> list[int]:
    """The evaluation widths (always including the full one); an error names the bad field."""
    for field in ("eval_dims", "matryoshka_dims"):
        dims = getattr(params, field, None) or []
        too_wide = [d for d in dims if d > width]
        if too_wide:
            raise ValueError(
                f"{where}.params.{field}: {too_wide} exceed the embedding width {width} of model "
                f"{model!r}; use widths <= {width} (e.g. {default_dims(width)})"
            )
    dims = params.eval_dims or default_dims(width)
    return sorted({width, *dims}, reverse=True)


class EmbeddingMethod:
    Params: ClassVar[type[EvalParams]] = TrainParams
    trains: ClassVar[bool] = True  # False: evaluate the model as loaded (a baseline row)

    def setup(self, model: Any, params: Any) -> dict[str, Any]:
        """Mark the trainable parameters of `model` (in place); return notes for the run."""
        raise NotImplementedError


EMBEDDING_METHODS: Registry[EmbeddingMethod] = Registry("embedding method")

register = EMBEDDING_METHODS.register_instance
