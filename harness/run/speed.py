"""Training speed as users get it: every optimizer step timed, steady state after a warm-up.

A step's time is the wall time between the ends of two consecutive optimizer steps (the first:
from the start of training), synchronised on CUDA: it holds everything the loop does for that
step (fetching and collating the batch, forward, backward, optimizer, logging, callbacks). The
first steps pay one-off costs (kernel selection, allocator growth, lazy initialisation), so
steady-state throughput leaves out WARMUP_STEPS of them; time to first step is reported apart.
"""

from __future__ import annotations

import time
from typing import Any

WARMUP_STEPS = 2  # steps left out of steady state (fewer when a run has fewer steps)


def _now(cuda: bool) -> float:
    if cuda:
        import torch

        torch.cuda.synchronize()  # queued kernels belong to the step that launched them
    return time.perf_counter()


def step_timer(samples_per_step: int) -> Any:
    """A trainer callback that records each optimizer step's seconds and trained tokens."""
    import torch
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.step_s: list[float] = []
            self.step_tokens: list[int | None] = []
            self._last: float | None = None
            self._tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self._last = _now(cuda)
            self._tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)

        def on_step_end(self, args, state, control, **kwargs):
            now = _now(cuda)
            if self._last is not None:
                self.step_s.append(now - self._last)
                seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
                self.step_tokens.append(seen - self._tokens if seen else None)
                self._tokens = seen
            self._last = now

        def summary(self) -> dict[str, Any] | None:
            return summarize(self.step_s, self.step_tokens, samples_per_step)

    return StepTimer()


def summarize(
    step_s: list[float], step_tokens: list[int | None], samples_per_step: int
) -> dict[str, Any] | None:
    """Time to first step, and tokens/s and samples/s over the steps after the warm-up."""
    if not step_s:
        return None
    warmup = min(WARMUP_STEPS, len(step_s) - 1)
    steady_s = sum(step_s[warmup:])
    tokens = step_tokens[warmup:]
    counted = all(t is not None for t in tokens)
    return {
        "warmup_steps": warmup,
        "steady_steps": len(step_s) - warmup,
        "time_to_first_step_s": step_s[0],
        "steady_step_s": steady_s / (len(step_s) - warmup),
        "steady_tokens_per_s": sum(tokens) / steady_s if counted and steady_s > 0 else None,
        "steady_samples_per_s": (
            samples_per_step * (len(step_s) - warmup) / steady_s if steady_s > 0 else None
        ),
        "step_s": step_s,
        "step_tokens": step_tokens,
    }
