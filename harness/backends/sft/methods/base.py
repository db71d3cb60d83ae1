"""The method interface: turn (model, params) into a trainable setup.

A method loads the model (it may need a quantized load), marks what trains, and may hand a PEFT
config to TRL's SFTTrainer, which wraps the model itself. Nothing method-specific lives in the
shared training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.models import ResolvedModel, load_causal_lm
from harness.suite.config import StrictModel
from harness.suite.registry import Registry


class NoParams(StrictModel):
    pass


@dataclass
class MethodContext:
    resolved: ResolvedModel
    tokenizer: Any
    device: str  # "cuda" or "cpu"
    weights_dtype: str = "float32"  # see load_dtype
    random_config: Any = None  # `weights: random`: build from this config instead of loading

    def load_model(self, **kwargs: Any) -> Any:
        import torch

        kwargs.setdefault("dtype", getattr(torch, self.weights_dtype))
        if self.random_config is None:
            return load_causal_lm(self.resolved, **kwargs)
        if "quantization_config" in kwargs:
            raise ValueError(
                "weights: random builds the model from its config, which cannot be quantized on "
                "load: run quantized methods (qlora) on pretrained weights"
            )
        from transformers import AutoModelForCausalLM

        # Initialised where it will train: a billion random weights take a minute on the CPU
        # side and a second on a GPU.
        with torch.device(self.device):
            return AutoModelForCausalLM.from_config(self.random_config, dtype=kwargs["dtype"])


@dataclass
class MethodSetup:
    model: Any
    peft_config: Any = None  # handed to SFTTrainer(peft_config=...)
    notes: dict[str, Any] = field(default_factory=dict)  # recorded with the run


class Method:
    Params: ClassVar[type[StrictModel]] = NoParams
    trains: ClassVar[bool] = True  # False: evaluate the model as loaded (a baseline row)
    # True when the loaded weights themselves train (full, freeze): under fp16 mixed precision
    # they must be fp32 master weights; methods that add parameters load a half-precision base.
    trains_base_weights: ClassVar[bool] = False

    def setup(self, ctx: MethodContext, params: Any) -> MethodSetup:
        raise NotImplementedError

    # Optional hooks; the backend calls them for every method, so none is named anywhere.
    def check(self, spec: Any, params: Any) -> None:
        """Refuse a spec this method cannot run (ValueError naming the field): called when the
        suite is read, so it is a suite error, not a failed run."""

    def train(self, run: Any, prepared: Any, callbacks: list) -> Any:
        """Take over the train phase (a backends.Trained), or None: TRL's SFTTrainer trains."""
        return None

    def evaluate(self, run: Any, prepared: Any, model: Any) -> Any:
        """Take over scoring (a backends.Evaluation), or None: the task scores the LM."""
        return None

    def callbacks(self, run: Any) -> list:
        """Trainer callbacks the method needs while it trains (AdaLoRA's rank allocation)."""
        return []

    def optimizer(self, model: Any, run: Any) -> Any:
        """An optimizer for the trainer to use (LoRA+'s two learning rates), or None: the
        Trainer builds `training.optimizer` itself."""
        return None

    def language_model(self, model: Any) -> Any:
        """The causal LM inside what `train` returned (its general-text loss is the forgetting
        metric); a method that wraps the LM in something else says where it is."""
        return model


METHODS: Registry[Method] = Registry("method")


register = METHODS.register_instance


def load_dtype(method: Method, device: str, precision: str) -> str:
    """The dtype a method's model is loaded in (harness/backends/trainer_args.weights_dtype)."""
    from harness.backends.trainer_args import weights_dtype

    return weights_dtype(method.trains_base_weights, device, precision)
