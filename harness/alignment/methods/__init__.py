"""Alignment methods, one file each (registered in ALIGN_METHODS on import)."""

from harness.alignment.methods import dpo, kto, ppo, reward_model, start  # noqa: F401
from harness.alignment.methods.base import ALIGN_METHODS

__all__ = ["ALIGN_METHODS"]
