"""Alignment methods, one file each (registered in ALIGN_METHODS on import)."""

from harness.backends.alignment.methods.base import ALIGN_METHODS
from harness.suite.registry import import_submodules

import_submodules(__name__)

__all__ = ["ALIGN_METHODS"]
