"""Memory measured in a run: its peak, the budget's CUDA cap, exact state bytes, saved activations.

CUDA: max allocated and reserved by the caching allocator. CPU: the run process's peak RSS,
which is why every run has a process of its own.
"""

from __future__ import annotations

import resource
import sys
from typing import Any


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, Any]:
    import torch

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = rss_kb if sys.platform == "darwin" else rss_kb * 1024  # Linux reports KiB
    memory: dict[str, Any] = {"peak_rss_bytes": rss}
    if torch.cuda.is_available():
        memory["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
        memory["cuda_max_reserved"] = torch.cuda.max_memory_reserved()
        memory["peak_mem_bytes"] = memory["cuda_max_allocated"]
        memory["peak_mem_kind"] = "cuda_max_allocated"
        fraction = torch.cuda.get_per_process_memory_fraction(0)
        total = torch.cuda.get_device_properties(0).total_memory
        memory["cuda_cap_bytes"] = int(fraction * total) if fraction < 1 else None
    else:
        memory["peak_mem_bytes"] = rss
        memory["peak_mem_kind"] = "cpu_peak_rss"
    return memory


def cap_cuda_memory(limit_bytes: int | None) -> int | None:
    """On a GPU larger than the budget, cap this process's CUDA allocations at the budget, so an
    H100 answers fit / no-fit as a T4 would (an allocation past the cap raises an OOM). Returns
    the cap applied, or None (no GPU, no budget, or a GPU no larger than the budget)."""
    import torch

    if limit_bytes is None or not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(0).total_memory
    if total <= limit_bytes:
        return None
    torch.cuda.set_per_process_memory_fraction(limit_bytes / total, 0)
    return limit_bytes


def tensor_bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size()


def state_bytes(model: Any, optimizer: Any) -> dict[str, int]:
    """Bytes held by parameters (trainable / frozen), gradients and optimizer state right now.

    These are exact on any device, so the estimator's static terms are checked on CPU too.
    Shared (tied) parameters are counted once, as in memory.
    """
    seen: set[int] = set()
    sizes = {"weights_trainable": 0, "weights_frozen": 0, "gradients": 0, "optimizer": 0}
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        sizes["weights_trainable" if p.requires_grad else "weights_frozen"] += tensor_bytes(p)
        quant_state = getattr(p, "quant_state", None)
        if quant_state is not None:  # bitsandbytes 4-bit: the blocks' scales live beside it
            sizes["weights_frozen"] += _quant_state_bytes(quant_state)
        if p.grad is not None:
            sizes["gradients"] += tensor_bytes(p.grad)
    if optimizer is not None:
        for state in optimizer.state.values():
            for value in state.values():
                if hasattr(value, "numel") and value.dim() > 0:  # the step counter is a scalar
                    sizes["optimizer"] += tensor_bytes(value)
    return sizes


def _quant_state_bytes(quant_state: Any) -> int:
    total = tensor_bytes(quant_state.absmax)
    nested = getattr(quant_state, "state2", None)
    if nested is not None:
        total += tensor_bytes(nested.absmax) + tensor_bytes(nested.code)
    return total


def state_probe():
    """A trainer callback that records state_bytes once, after the first optimizer step (when
    gradients and optimizer state both exist and before gradients are zeroed). Trainers with
    their own loop that never fire on_optimizer_step (TRL's PPOTrainer) are measured by a hook
    on the optimizer's step, set when training begins: the same moment."""
    from transformers import TrainerCallback

    class StateProbe(TrainerCallback):
        measured: dict[str, int] | None = None

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            if model is None or optimizer is None:
                return
            inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
            handle = None

            def after_step(*_: Any) -> None:
                if self.measured is None:
                    self.measured = state_bytes(model, optimizer)
                handle.remove()

            handle = inner.register_step_post_hook(after_step)

        def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
            if self.measured is None and model is not None:
                self.measured = state_bytes(model, optimizer)

    return StateProbe()


def saved_block_bytes(model: Any, blocks: Any, run_forward: Any) -> list[int]:
    """Bytes autograd saves for backward inside each decoder block during one forward pass.

    Saved-tensor hooks count every saved tensor's storage once (leaving out parameters) while a
    block executes (pre/post forward hooks on each block). Works on real tensors (a measurement)
    and on fake ones (the estimator's trace: shapes and dtypes, no memory).
    """
    import torch
    from torch.multiprocessing.reductions import StorageWeakRef

    def key(tensor: Any) -> int:
        return StorageWeakRef(tensor.untyped_storage()).cdata

    params = {key(p) for p in model.parameters()}
    saved: list[dict[int, int]] = [{} for _ in blocks]
    current: list[int] = []

    def pack(tensor: Any) -> Any:
        if current and key(tensor) not in params:
            storage = tensor.untyped_storage()
            saved[current[-1]][key(tensor)] = storage.nbytes()
        return tensor

    def leave(*_: Any) -> None:  # a forward hook's return value would replace the output
        current.pop()

    handles = []
    for index, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(lambda *_, i=index: current.append(i)))
        handles.append(block.register_forward_hook(leave))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
    return [sum(block.values()) for block in saved]
