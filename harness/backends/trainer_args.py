"""The Hugging Face TrainingArguments fields every backend sets the same way from a run's spec.

TRL's trainers (SFT, reward, DPO, KTO) and sentence-transformers' trainer all take these; each
backend adds only what is its own (max_length, a batch sampler, a preference loss's beta).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPORT_TO_ENV = "FTBENCH_REPORT_TO"  # `ftbench run --report-to`, inherited by run processes


def trainer_kwargs(spec: Any, out_dir: Path, device: str) -> dict[str, Any]:
    t = spec.training
    on_gpu = device == "cuda"
    return {
        "output_dir": str(out_dir / "trainer"),
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.learning_rate,
        "weight_decay": t.weight_decay,
        "warmup_steps": t.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        "lr_scheduler_type": t.lr_scheduler,
        "optim": t.optimizer,
        "logging_steps": t.logging_steps,
        "seed": spec.seed,
        "data_seed": spec.seed,
        # Mixed precision only where the hardware has it; CPU runs in fp32 (recorded). TRL's
        # configs default to bf16=True, which on a CPU without bf16 units runs ~18x slower.
        "fp16": on_gpu and t.precision == "fp16",
        "bf16": on_gpu and t.precision == "bf16",
        "use_cpu": not on_gpu,
        "gradient_checkpointing": t.gradient_checkpointing,
        "logging_nan_inf_filter": False,  # the default hides a NaN loss; divergence must be seen
        "save_strategy": "no",
        "report_to": report_to(spec),
        "run_name": spec.label,  # what a tracker shows the run as
        "disable_tqdm": True,
    }


def report_to(spec: Any) -> list[str]:
    """The trackers a run's trainer logs to: the command line's (FTBENCH_REPORT_TO, comma-
    separated), else the spec's training.report_to, else none. Checked before a suite starts
    (check_trackers), so a missing package is one clear error, not a failed run."""
    given = os.environ.get(REPORT_TO_ENV)
    if given is not None:
        return [name.strip() for name in given.split(",") if name.strip()]
    return list(spec.training.report_to or [])


# tracker -> (module it imports, package that provides it), where either differs from its name
_MODULES = {
    "azure_ml": ("azureml", "azureml-core"), "comet_ml": ("comet_ml", "comet-ml"),
    "flyte": ("flytekit", "flytekit"),
}  # fmt: skip


def check_trackers(names: list[str]) -> list[str]:
    """Problems with tracker names (unknown, or their package not installed here)."""
    import importlib.util

    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    problems = []
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            problems.append(
                f"report_to: unknown tracker {name!r} (known: "
                f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))})"
            )
            continue
        module, package = _MODULES.get(name, (name, name))
        if importlib.util.find_spec(module) is None:
            problems.append(f"report_to: tracker {name!r} needs `pip install {package}` here")
    return problems


def weights_dtype(trains_loaded_weights: bool, device: str, precision: str) -> str:
    """The dtype a model's weights are loaded in, by every backend that trains it: fp32 on CPU,
    for fp32 runs and where the loaded weights themselves train (the GradScaler needs fp32
    master weights); otherwise the run's half precision (a frozen base under an adapter, a copy
    that only samples). Without it, transformers 5 loads the checkpoint's own dtype (often bf16,
    which a T4 lacks)."""
    if device != "cuda" or precision == "fp32" or trains_loaded_weights:
        return "float32"
    return {"fp16": "float16", "bf16": "bfloat16"}[precision]
