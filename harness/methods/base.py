"""The method interface: turn (model, params) into a trainable setup.

A method loads the model (it may need a quantized load), marks what trains, and may hand a PEFT
config to TRL's SFTTrainer, which wraps the model itself. Nothing method-specific lives in the
shared training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.config import StrictModel
from harness.models import ResolvedModel, load_causal_lm
from harness.registry import Registry


class NoParams(StrictModel):
    pass


@dataclass
class MethodContext:
    resolved: ResolvedModel
    tokenizer: Any
    device: str  # "cuda" or "cpu"

    def load_model(self, **kwargs: Any) -> Any:
        return load_causal_lm(self.resolved, **kwargs)


@dataclass
class MethodSetup:
    model: Any
    peft_config: Any = None  # handed to SFTTrainer(peft_config=...)
    notes: dict[str, Any] = field(default_factory=dict)  # recorded with the run


class Method:
    Params: ClassVar[type[StrictModel]] = NoParams
    trains: ClassVar[bool] = True  # False: evaluate the model as loaded (a baseline row)

    def setup(self, ctx: MethodContext, params: Any) -> MethodSetup:
        raise NotImplementedError


METHODS: Registry[Method] = Registry("method")


register = METHODS.register_instance
