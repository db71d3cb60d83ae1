"""Peak-memory measurement for a run (the T4 estimator and enforcement build on this).

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
    else:
        memory["peak_mem_bytes"] = rss
        memory["peak_mem_kind"] = "cpu_peak_rss"
    return memory
