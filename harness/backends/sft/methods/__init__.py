"""Causal-LM fine-tuning methods: each file registers one method in METHODS (imported here)."""

from __future__ import annotations

from harness.backends.sft.methods.base import METHODS, Method, MethodContext, MethodSetup
from harness.suite.registry import import_submodules

import_submodules(__name__)

__all__ = ["METHODS", "Method", "MethodContext", "MethodSetup"]
