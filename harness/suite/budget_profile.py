"""Budget profiles: the GPU memory a suite targets (a suite's `budget:` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from harness.suite.config import StrictModel

T4_USABLE_GB = 15.0  # a 16 GB T4 leaves about 15 GB after the CUDA context


class Budget(StrictModel):
    """The memory budget a suite targets. `t4`: 16 GB card (~15 GB usable), fp16 only."""

    profile: Literal["none", "t4", "custom"] = "none"
    gpu_mem_gb: float | None = None
    # What happens to a run predicted not to fit: `skip` (status over_budget, recorded; the
    # default) or `adjust` (gradient checkpointing, then smaller micro-batches with more
    # accumulation, keeping the effective batch). None keeps old run_ids unchanged.
    over_budget: Literal["skip", "adjust"] | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.profile == "custom" and self.gpu_mem_gb is None:
            raise ValueError("profile 'custom' needs gpu_mem_gb (e.g. gpu_mem_gb: 24.0)")
        if self.profile != "custom" and self.gpu_mem_gb is not None:
            raise ValueError("gpu_mem_gb is only for profile 'custom'")
        return self

    @property
    def supports_bf16(self) -> bool:
        return self.profile != "t4"  # a T4 (compute capability 7.5) has no bf16

    @property
    def limit_gb(self) -> float | None:
        """Usable GPU memory in GB (1e9 bytes)."""
        return {"t4": T4_USABLE_GB, "none": None}.get(self.profile, self.gpu_mem_gb)

    @property
    def limit_bytes(self) -> int | None:
        return None if self.limit_gb is None else int(self.limit_gb * 1e9)
