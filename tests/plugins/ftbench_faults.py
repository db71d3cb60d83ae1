"""Test-only methods that fail on purpose, loaded through FTBENCH_PLUGINS (like a user plug-in)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from pydantic import Field

from harness.backends.sft.methods.base import METHODS, Method, MethodContext, MethodSetup
from harness.backends.sft.methods.lora import Lora, LoraParams
from harness.suite.config import StrictModel


@METHODS.register_instance("explode")
class Explode(Method):
    def setup(self, ctx: MethodContext, params: StrictModel) -> MethodSetup:
        raise RuntimeError("injected failure for testing")


@METHODS.register_instance("nan_loss")
class NanLoss(Lora):
    """LoRA whose embeddings output NaN: the training loss is NaN from the first step.

    The hook sits on the input embeddings, not on lm_head: TRL's default chunked loss computes
    the head projection from its weight directly, without calling the head module.
    """

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        setup = super().setup(ctx, params)
        embeddings = setup.model.get_input_embeddings()
        embeddings.register_forward_hook(lambda module, inputs, out: out * float("nan"))
        return setup


@METHODS.register_instance("cuda_oom")
class CudaOom(Lora):
    """LoRA whose setup raises the exception a CUDA allocation past the card (or the budget's
    cap) raises: the run must be recorded `oom`, not `failed`."""

    def setup(self, ctx: MethodContext, params: LoraParams) -> MethodSetup:
        import torch

        from harness.backends.sft.memory import MetaContext

        if isinstance(ctx, MetaContext):  # the memory estimate's trace: not a run
            return super().setup(ctx, params)
        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB (injected for testing)"
        )


class HangParams(StrictModel):
    seconds: float = Field(600.0, gt=0)


@METHODS.register_instance("hang")
class Hang(Method):
    Params = HangParams

    def setup(self, ctx: MethodContext, params: HangParams) -> MethodSetup:
        time.sleep(params.seconds)
        raise AssertionError("should have been killed by the timeout")


def _register_alignment_faults() -> None:
    from harness.backends.alignment.methods.base import ALIGN_METHODS
    from harness.backends.alignment.methods.ppo import Ppo

    @ALIGN_METHODS.register_instance("ppo_explode")
    class PpoExplode(Ppo):
        """PPO that fails once its stages are loaded: the other policy cells must go on."""

        def train_policy(self, ctx, params, proxy):
            raise RuntimeError("injected PPO failure for testing")


_register_alignment_faults()


class ProbeParams(LoraParams):
    first_sleep_s: float = Field(0.0, ge=0)  # the first execution of a run sleeps (to be killed)


@METHODS.register_instance("probe")
class Probe(Lora):
    """LoRA that counts its executions: one line per start in $FTBENCH_PROBE_FILE, naming the run
    folder (the folder of the worker.log its stdout goes to)."""

    Params = ProbeParams

    def setup(self, ctx: MethodContext, params: ProbeParams) -> MethodSetup:
        from harness.backends.sft.memory import MetaContext

        if isinstance(ctx, MetaContext):  # the memory estimate's trace (meta device): not a run
            return super().setup(ctx, params)
        run_dir = Path(os.readlink("/proc/self/fd/1")).parent.name
        path = Path(os.environ["FTBENCH_PROBE_FILE"])
        with open(path, "a") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(f"{run_dir} {os.getpid()}\n")
        if params.first_sleep_s and path.read_text().count(run_dir) == 1:
            time.sleep(params.first_sleep_s)
        return super().setup(ctx, params)
