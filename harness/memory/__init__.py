"""GPU memory: budget profiles, the pre-flight estimate and verdicts, measurement, calibration.

- profile.py  the `budget:` block of a suite (t4, custom, none)
- estimate.py predicted peak memory of a model set up for training (fake tensors, no GPU)
- budget.py   verdicts against a budget and `adjust` (checkpointing, smaller micro-batches)
- measure.py  peak memory of a run, the CUDA cap, exact state bytes, saved-activation bytes
- check.py    predicted against measured, for the runs in DuckDB (`ftbench memcheck`)
"""
