"""Task-adaptive pre-training (TAPT; Gururangan et al. 2020): continued causal-LM training on the
dataset's own train texts, without their labels, before a method fine-tunes.

`tapt: {steps: N, ...}` on a method entry (suite.MethodEntry -> RunSpec.tapt) makes the SFT
backend's `upstream()` return a TAPT stage; the plan runs it first and links it by run_id, and
the cell's method loads the stage's weights instead of the suite's model (`start_weights`).

The stage is a run of its own backend (`tapt`, registered here) because it trains and scores
differently from SFT: plain next-token loss on texts, scored by held-out loss and perplexity. Its
dataset is the cell's with the task swapped for the task's TAPT twin (`tapt_<task>`), which has the
same record fields, split key and group fields: the stage's splits are the cell's exactly, and it
trains on the train split's input field (the task's `split_key`: a review, a question), never on
a label, an answer or a validation/test record. Its run_id follows from the model, the dataset and
the TAPT config only (its seed is the config's, not the cell's), so every method and seed of a
suite that asks for the same TAPT shares one stage.

The stage is scored for forgetting as every SFT run is (forgetting.py: the general-text loss
before and after it trains). A cell's own forgetting is measured from the stage's weights (its
"before" is the stage's "after"), so a TAPT cell drifted from the suite's model by the stage's
forgetting plus its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

import harness.backends.sft.tasks  # noqa: F401 - the SFT tasks, which get TAPT twins below
from harness.backends import BACKENDS, Backend, Evaluation, Prepared, RunContext, Trained, checks
from harness.backends.data import load_splits
from harness.backends.sft import forgetting
from harness.backends.trainer_args import trainer_kwargs
from harness.suite.config import EntryFieldError, StrictModel
from harness.suite.metrics import Metric
from harness.suite.registry import Registry
from harness.suite.spec import RunSpec, TrainingConfig
from harness.suite.tasks import TASKS, Task

ROLE = "tapt"  # the upstream role a cell links its stage under
WEIGHTS_DIR = "weights"  # the stage's full model (adapter merged), loaded by the cells


class TaptConfig(StrictModel):
    """`tapt:` on a method entry: how the stage trains (all of it decides the stage's run_id)."""

    steps: int = Field(ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(5.0e-5, gt=0)
    max_length: int = Field(128, ge=8)  # tokens of a text kept (longer texts are truncated)
    peft: Literal["full", "lora"] = "full"  # lora: trained as an adapter, merged before saving
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    seed: int = 0  # the stage's seed: shared by every seed of the cells
    timeout_s: int = Field(1800, ge=1)


class TaptParams(StrictModel):
    """The stage run's method params."""

    peft: Literal["full", "lora"] = "full"
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)


def twin_name(task: str) -> str:
    return f"tapt_{task}"


class TaptTask(Task):
    """A TAPT twin: the splits of `source` (same fields and split keys), scored as a language
    model on the input field of the evaluated split."""

    source: ClassVar[str]
    backend: ClassVar[str] = "tapt"
    metrics = (
        Metric("eval_loss", False, "mean next-token NLL per token of the evaluated split's texts"),
        Metric("perplexity", False, "exp(eval_loss)"),
        *forgetting.METRICS,
    )
    primary_metric = "eval_loss"


def _register_twins() -> None:
    """One twin per SFT task registered so far (the SFT tasks' folder is imported above, so a new
    task file gets its twin without an edit here). Reads the registry's items directly: its
    lookups would load plug-ins, which may import this module."""
    for name, task in list(TASKS._items.items()):
        if getattr(task, "backend", None) != "sft" or twin_name(name) in TASKS._items:
            continue
        twin = type(
            f"Tapt{type(task).__name__}",
            (TaptTask,),
            {"source": name, "record_fields": task.record_fields, "split_key": task.split_key,
             "group_fields": task.group_fields},
        )  # fmt: skip
        TASKS.register_instance(twin_name(name))(twin)


_register_twins()


def config(spec: RunSpec) -> TaptConfig | None:
    """The cell's TAPT config, validated (a suite error when it is wrong)."""
    if spec.tapt is None:
        return None
    try:
        found = TaptConfig.model_validate(spec.tapt)
    except ValidationError as exc:
        problems = "; ".join(
            f"tapt.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise EntryFieldError(problems) from None
    if spec.model.systems_only:
        raise EntryFieldError(
            "tapt: a `weights: random` model is built from its config, so it could not start "
            "from the stage's weights: use pretrained weights or drop tapt"
        )
    if twin_name(spec.dataset.task) not in TASKS:
        raise EntryFieldError(
            f"tapt: task {spec.dataset.task!r} has no TAPT twin (not an SFT task)"
        )
    return found


def upstream(spec: RunSpec) -> dict[str, RunSpec]:
    found = config(spec)
    return {ROLE: stage_spec(spec, found)} if found else {}


def stage_spec(spec: RunSpec, tapt: TaptConfig) -> RunSpec:
    """The TAPT run a cell starts from: derived from the model, dataset and TAPT config only (and
    the suite, budget, precision and evaluation batch every run of the suite shares)."""
    return RunSpec(
        suite=spec.suite,
        suite_version=spec.suite_version,
        method_key="tapt",
        method="tapt",
        params=TaptParams(peft=tapt.peft, r=tapt.r, alpha=tapt.alpha).model_dump(mode="json"),
        model_key=spec.model_key,
        model=spec.model,
        dataset_key=spec.dataset_key,
        dataset=spec.dataset.model_copy(
            update={"task": twin_name(spec.dataset.task), "metric": None}
        ),  # fmt: skip
        training=TrainingConfig(
            max_steps=tapt.steps,
            batch_size=tapt.batch_size,
            learning_rate=tapt.learning_rate,
            max_length=tapt.max_length,
            eval_batch_size=spec.training.eval_batch_size,
            timeout_s=tapt.timeout_s,
            precision=spec.training.precision,
        ),
        seed=tapt.seed,
        budget=spec.budget,
        determinism=spec.determinism,
    )


def start_weights(run: RunContext, resolved: Any) -> tuple[Any, dict[str, Any]]:
    """What a cell's method loads: the finished TAPT stage's model when the cell has one (same
    architecture and tokenizer; the note names the stage), else the suite's model."""
    if not run.spec.upstream or ROLE not in run.spec.upstream:
        return resolved, {}
    from harness.backends import upstream_dir
    from harness.models import ResolvedModel

    run_id = run.spec.upstream[ROLE]
    folder = upstream_dir(run.out_dir, ROLE, run_id) / WEIGHTS_DIR
    provenance = {**resolved.provenance, "tapt_stage": run_id}
    return ResolvedModel(str(folder), None, provenance), {"start_weights": f"tapt stage {run_id}"}


# --- the stage's backend --------------------------------------------------------------------


class Tapt:
    Params: ClassVar[type[StrictModel]] = TaptParams


TAPT_METHODS: Registry[Tapt] = Registry("TAPT method")
TAPT_METHODS.register_instance("tapt")(Tapt)


@dataclass
class TaptPrepared(Prepared):
    tokenizer: Any = None
    field: str = "text"
    general_loss_before: float | None = None  # forgetting.py's general-text loss, before


def texts(records: list[dict[str, Any]], field: str) -> list[str]:
    return [r[field] for r in records]


@BACKENDS.register_instance("tapt")
class TaptBackend(Backend):
    """Causal-LM training on a dataset's train texts (no labels): the TAPT stage of SFT cells."""

    reports_intermediate = False  # a stage is never a tuning trial

    @property
    def methods(self) -> Registry[Any]:
        return TAPT_METHODS

    def estimate_memory(self, spec: RunSpec, device: str = "cuda") -> Any:
        """As an SFT run of `full` (or `lora`) with the stage's training config: the same model,
        optimizer and sequence length; TRL's chunked loss bounds the head whichever tokens train."""
        params = TaptParams.model_validate(spec.params)
        method, method_params = (
            ("full", {})
            if params.peft == "full"
            else ("lora", {"r": params.r, "alpha": params.alpha})
        )
        as_sft = spec.model_copy(update={"method": method, "params": method_params})
        return BACKENDS.get("sft").estimate_memory(as_sft, device)

    def prepare(self, run: RunContext) -> TaptPrepared:
        import torch

        from harness.models import load_causal_lm, load_tokenizer, resolve_model

        spec, params = run.spec, run.params
        task = TASKS.get(spec.dataset.task)
        resolved = resolve_model(spec.model)
        tokenizer = load_tokenizer(resolved)
        tokenizer.padding_side = "right"  # scoring counts positions from the left
        splits = load_splits(spec.dataset)  # the twin's: the cell task's splits exactly
        # As the SFT methods load (load_dtype): fp32 on CPU and where the weights train (full:
        # fp16 mixed precision keeps fp32 masters); a LoRA stage's base in the run's half
        # precision on a GPU (what the memory estimate, an SFT `lora` run, assumes).
        half = run.device == "cuda" and spec.training.precision != "fp32" and params.peft == "lora"
        dtype = (
            {"fp16": torch.float16, "bf16": torch.bfloat16}[spec.training.precision]
            if half
            else torch.float32
        )
        model = load_causal_lm(resolved, dtype=dtype).to(run.device)
        # The same score before training: what TAPT changed on held-out in-domain text.
        t0, t = time.perf_counter(), spec.training
        before = mean_token_nll(
            model, tokenizer, texts(splits.as_dict()[run.split], task.split_key), t.max_length,
            t.eval_batch_size,
        )  # fmt: skip
        # and on general text, as every SFT run is scored: what TAPT made the LM forget
        general_before = forgetting.general_loss(model, tokenizer)
        return TaptPrepared(
            model=model,
            resolved=resolved,
            splits=splits,
            data_checks=checks.tokenizer_checks(tokenizer),
            notes={
                "tapt_text_field": task.split_key,
                "tapt_source_task": task.source,
                f"{run.split}_eval_loss_before": before,
            },  # fmt: skip
            eval_s=time.perf_counter() - t0,
            weights_dtype=str(dtype).removeprefix("torch."),
            tokenizer=tokenizer,
            field=task.split_key,
            general_loss_before=general_before,
        )

    def train(self, run: RunContext, prepared: TaptPrepared, callbacks: list) -> Trained:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        from harness.backends.lora import DROPOUT_DEFAULT, LoraParams

        spec, params = run.spec, run.params
        peft_config = None
        if params.peft == "lora":
            lora = LoraParams(r=params.r, alpha=params.alpha, dropout=DROPOUT_DEFAULT["sft"])
            peft_config = lora.peft_config("CAUSAL_LM")
        rows = [{"text": t} for t in texts(prepared.splits.train, prepared.field)]
        trainer = SFTTrainer(
            model=prepared.model,
            args=SFTConfig(
                **trainer_kwargs(spec, run.out_dir, run.device),
                max_length=spec.training.max_length,
                dataset_text_field="text",
                include_num_input_tokens_seen="non_padding",
                dataset_num_proc=None,
            ),
            train_dataset=Dataset.from_list(rows),
            processing_class=prepared.tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        model = trainer.model
        if hasattr(model, "merge_and_unload"):  # LoRA: the cells load a plain model
            model = model.merge_and_unload()
        folder = run.out_dir / WEIGHTS_DIR
        model.save_pretrained(folder)  # always: the cells load it, whatever save_weights says
        prepared.tokenizer.save_pretrained(folder)
        return Trained(
            model, steps=trainer.state.global_step, train_s=train_s,
            tokens=int(trainer.state.num_input_tokens_seen), saved_to=folder,
            notes={"tapt_texts": len(rows)},
        )  # fmt: skip

    def evaluate(self, run, prepared: TaptPrepared, model: Any, *, intermediate=False):
        records = prepared.splits.as_dict()[run.split]
        t = run.spec.training
        loss = mean_token_nll(
            model, prepared.tokenizer, texts(records, prepared.field), t.max_length,
            t.eval_batch_size,
        )  # fmt: skip
        metrics = {"eval_loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        after = forgetting.general_loss(model, prepared.tokenizer)
        return Evaluation({**metrics, **forgetting.metrics(prepared.general_loss_before, after)})


def mean_token_nll(
    model: Any, tokenizer: Any, items: list[str], max_length: int, batch_size: int
) -> float:
    """Mean next-token NLL over every predicted token of `items` (each truncated to max_length)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = tokenizer(
                items[start : start + batch_size], truncation=True, max_length=max_length,
                padding=True, return_tensors="pt",
            ).to(device)  # fmt: skip
            logits = model(**batch).logits[:, :-1].float()
            target = batch["input_ids"][:, 1:]
            mask = batch["attention_mask"][:, 1:].bool() & batch["attention_mask"][:, :-1].bool()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), target, reduction="none"
            )
            total += float(nll[mask].sum())
            count += int(mask.sum())
    return total / max(count, 1)


def stage_folder(results_dir: Path, run_id: str) -> Path:
    """Where a finished stage's model lies (for tests and tools)."""
    return results_dir / "runs" / run_id / WEIGHTS_DIR
