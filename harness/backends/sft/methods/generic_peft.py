"""The PEFT catalogue as data: any PEFT method by its `peft_type` and config, no code per method.

`peft: {params: {peft_type: LOHA, config: {r: 8, alpha: 16}}}` builds PEFT's own config class
for that type (peft.mapping's registry, so whatever PEFT adds next is here too). The config is
checked against that class when the suite is read: an unknown field is named with "did you
mean", a value of the wrong type is named with the field's type, and PEFT's own checks (its
`__post_init__`) run then, so a bad config is a suite error, never a failed run. The task type is
the backend's (CAUSAL_LM). PEFT's method comparison keeps its variants as config files the same
way. The named methods (lora, ia3, prompt, prefix, qlora) are presets: they build their configs
through `build_config` here, with their own params (and run_ids) unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from harness.backends.sft.methods.base import Method, MethodContext, MethodSetup, register
from harness.suite.config import StrictModel
from harness.suite.registry import did_you_mean

TASK_TYPE = "CAUSAL_LM"
# Set by the harness, not by a suite: the type is `peft_type`, the task is the backend's, and
# where the base model comes from is the run's model spec.
SET_BY_HARNESS = {
    "peft_type": "give it as params.peft_type",
    "task_type": f"the SFT backend sets {TASK_TYPE}",
    "base_model_name_or_path": "the run's model spec says which model",
    "revision": "the run's model spec says which revision",
    "inference_mode": "a run trains the adapter",
}


def config_class(peft_type: str) -> type:
    """PEFT's config class for `peft_type` (its PeftType name, e.g. LOHA)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    found = {str(getattr(t, "value", t)): c for t, c in PEFT_TYPE_TO_CONFIG_MAPPING.items()}
    if peft_type not in found:
        hint = did_you_mean(peft_type.upper(), found, cutoff=0.6)
        raise ValueError(
            f"peft_type {peft_type!r} is not a PEFT method{hint} (PEFT {_peft_version()} has: "
            f"{', '.join(sorted(found))})"
        )
    return found[peft_type]


@functools.cache
def _peft_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("peft")


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The settable fields of a PEFT config dataclass, with their type (None: not checkable)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name) for f in dataclasses.fields(cls) if f.init}


@functools.cache
def _adapter(hint: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(hint)
    except Exception:  # noqa: BLE001 - a type pydantic cannot model (torch.dtype...): PEFT checks
        return None


def check_config(peft_type: str, config: dict[str, Any]) -> list[str]:
    """Problems with `config` for `peft_type`, each naming its field (empty: none)."""
    cls = config_class(peft_type)
    fields = _field_types(cls)
    problems = []
    for name, value in config.items():
        if name in SET_BY_HARNESS:
            problems.append(f"config.{name}: not settable here ({SET_BY_HARNESS[name]})")
        elif name not in fields:
            hint = did_you_mean(name, fields, cutoff=0.6)
            problems.append(f"config.{name}: not a field of PEFT's {cls.__name__}{hint}")
        elif (adapter := _adapter(fields[name])) is not None and not _accepts(adapter, value):
            problems.append(
                f"config.{name}: {value!r} is not a {_type_name(fields[name])} "
                f"({cls.__name__}.{name})"
            )
    return problems


def _accepts(adapter: TypeAdapter, value: Any) -> bool:
    """Whether a value fits the field's type. A string is never read as a number (a YAML "1e-4"
    is a string, as everywhere in a suite); a whole float fits an int field (PEFT annotates
    lora_alpha as int and the harness has always passed 16.0)."""
    for strict in (True, False):
        if not strict and isinstance(value, str):
            return False
        try:
            adapter.validate_python(value, strict=strict)
            return True
        except ValidationError:
            pass
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def build_config(peft_type: str, config: dict[str, Any]) -> Any:
    """PEFT's config object of `peft_type` with `config` for a causal LM; ValueError (naming the
    fields) for a config PEFT's class does not accept."""
    problems = check_config(peft_type, config)
    if problems:
        raise ValueError("; ".join(problems))
    cls = config_class(peft_type)
    try:
        return cls(task_type=TASK_TYPE, **config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"PEFT's {cls.__name__} refuses this config: {exc}") from exc


class PeftParams(StrictModel):
    peft_type: str
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_for_peft(self) -> PeftParams:
        build_config(self.peft_type, self.config)  # a bad config is a suite error
        return self


# Types that need a training setting TRL's defaults do not have: (field, value, why).
NEEDS_TRAINING = {
    "ADAPTION_PROMPT": (
        "loss_type", "nll",
        "its attention wrapper returns outputs without the token count TRL 1.12's default "
        "chunked_nll loss reads",
    ),
}  # fmt: skip


def adalora_allocation() -> Any:
    """AdaLoRA's rank budget: PEFT asks the training loop to call `update_and_allocate` after
    every optimizer step, before the gradients are zeroed (it scores importance from them);
    the Trainer does not, so without this AdaLoRA trains as a fixed-rank LoRA."""
    from transformers import TrainerCallback

    class AdaLoraAllocation(TrainerCallback):
        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

    return AdaLoraAllocation()


# Types whose training loop needs a callback PEFT leaves to the user.
CALLBACKS = {"ADALORA": adalora_allocation}


@register("peft")
class GenericPeft(Method):
    Params = PeftParams

    def check(self, spec: Any, params: PeftParams) -> None:
        field, value, why = NEEDS_TRAINING.get(params.peft_type, (None, None, ""))
        if field and getattr(spec.training, field) != value:
            raise ValueError(
                f"peft_type {params.peft_type} needs training.{field}: {value} ({why})"
            )
        total = params.config.get("total_step")
        if params.peft_type == "ADALORA" and total != spec.training.max_steps:
            raise ValueError(
                f"peft_type ADALORA: config.total_step ({total}) must be training.max_steps "
                f"({spec.training.max_steps}): its rank budget schedule (tinit, tfinal) runs "
                "over total_step optimizer steps"
            )

    def callbacks(self, run: Any) -> list:
        make = CALLBACKS.get(run.params.peft_type)
        return [make()] if make else []

    def setup(self, ctx: MethodContext, params: PeftParams) -> MethodSetup:
        config = build_config(params.peft_type, params.config)
        return MethodSetup(ctx.load_model(), peft_config=config)
