"""`simpo`: Simple Preference Optimization (Meng et al. 2024) on the same proxy-ranked on-policy
pairs as DPO (see preference_data.py). TRL 1.12 has it as CPO with `loss_type="simpo"`.

Reference-free: the reward is the length-normalised log-probability times `beta`, and the loss
asks the chosen reward to beat the rejected one by `gamma` (the target margin; TRL's
`simpo_gamma`). Defaults follow the paper's advice (beta 2.0, gamma/beta 0.5). `cpo_alpha` > 0
adds CPO's NLL term on the chosen samples (CPO-SimPO); 0 is SimPO as published.
"""

from __future__ import annotations

from pydantic import Field

from harness.backends.alignment.memory import PreferenceShape
from harness.backends.alignment.methods.base import PolicyParams, register
from harness.backends.alignment.methods.preference_data import OfflinePreferenceMethod


class SimpoParams(PolicyParams):
    beta: float = Field(2.0, gt=0)
    gamma: float = Field(1.0, ge=0)
    cpo_alpha: float = Field(0.0, ge=0)


@register("simpo")
class Simpo(OfflinePreferenceMethod):
    Params = SimpoParams
    counts_tokens = False  # batches hold chosen_/rejected_input_ids only

    def memory_shape(self, params: SimpoParams) -> PreferenceShape:
        # CPO's forward: chosen + rejected, no reference; its NLL term only when cpo_alpha > 0
        return PreferenceShape(2, reference=False, nograd_rows=0, chosen_nll=params.cpo_alpha > 0)

    def trainer(self, params: SimpoParams):
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        fields = {"loss_type": "simpo", "beta": params.beta, "simpo_gamma": params.gamma,
                  "cpo_alpha": params.cpo_alpha}  # fmt: skip
        return CPOConfig, CPOTrainer, fields
