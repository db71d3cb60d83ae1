"""The `sft` backend: causal LMs fine-tuned with TRL's SFTTrainer and scored by their task.

- backend.py  the phases of a run (prepare, train, evaluate) and its memory estimate
- methods/    one file per method: how the model is loaded and what trains
- tasks/      one file per task: prompt/completion formatting and scoring
- memory.py   how a method's model is built for the memory estimator (meta device)
"""

from harness.suite.registry import import_submodules

import_submodules(__name__)
