"""The `alignment` backend: preference alignment with a reward model, PPO / DPO / KTO, and a
separate judge. Stages (the proxy reward model and the judge) are ordinary runs that the policy
runs start from (Backend.upstream); the plan runs them first and reuses them by run_id.

- backend.py     the phases of a run
- task.py        the tasks (`positive_continuation`, `preference_pairs`) and their data partitions
- methods/       one file per method (reward_model, start, ppo, grpo, dpo, kto, orpo, simpo);
                 preference_data.py: where the offline methods' pairs come from
- reward.py      reward models that score decoded text;  generation.py  sampling and scoring
"""

from harness.suite.registry import import_submodules

import_submodules(__name__)
