"""`start`: the starting policy itself, scored like every trained policy (the baseline row).

Its win-rate against itself is 0.5 and its KL 0 by construction (same model, same sampling seed).
"""

from __future__ import annotations

from harness.backends import Trained
from harness.backends.alignment.methods.base import (
    AlignContext,
    PolicyMethod,
    PolicyParams,
    register,
)


@register("start")
class Start(PolicyMethod):
    trains = False

    def train_policy(self, ctx: AlignContext, params: PolicyParams, proxy) -> Trained:
        return Trained(ctx.load_start())  # nothing trained: steps 0
