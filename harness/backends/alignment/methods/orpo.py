"""`orpo`: Odds Ratio Preference Optimization (Hong et al. 2024; TRL's experimental ORPOTrainer)
on the same proxy-ranked on-policy pairs as DPO (see preference_data.py).

Reference-free: the loss is the NLL of the chosen sample plus `beta` (the paper's lambda) times
the log-sigmoid of the chosen/rejected log-odds ratio, so no reference model is kept.
"""

from __future__ import annotations

from pydantic import Field

from harness.backends.alignment.memory import PreferenceShape
from harness.backends.alignment.methods.base import PolicyParams, register
from harness.backends.alignment.methods.preference_data import OfflinePreferenceMethod


class OrpoParams(PolicyParams):
    beta: float = Field(0.1, gt=0)  # weight of the odds-ratio term (lambda in the paper)


@register("orpo")
class Orpo(OfflinePreferenceMethod):
    Params = OrpoParams
    counts_tokens = False  # batches hold chosen_/rejected_input_ids only

    def memory_shape(self, params: OrpoParams) -> PreferenceShape:
        # chosen + rejected in one forward, no reference; the NLL over the chosen half
        return PreferenceShape(2, reference=False, nograd_rows=0, chosen_nll=True)

    def trainer(self, params: OrpoParams):
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOConfig, ORPOTrainer, {"beta": params.beta}
