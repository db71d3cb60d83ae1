"""Fine-tuning methods. Each file registers one method; the runner only ever looks names up here."""

from __future__ import annotations

from harness.methods import freeze, full, ia3, lora, prefix, prompt, qlora, zero_shot  # noqa: E402,F401,I001
from harness.methods.base import METHODS, Method, MethodContext, MethodSetup

__all__ = ["METHODS", "Method", "MethodContext", "MethodSetup"]
