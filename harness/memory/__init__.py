"""GPU memory: the pre-flight estimate, measurement, calibration.

- estimate.py     predicted peak memory of a model set up for training (fake tensors, no GPU)
- cuda_kernels.py what CUDA kernels save where the CPU trace's kernels would save otherwise
- measure.py      peak memory of a run, the CUDA cap, exact state bytes, saved-activation bytes
- calibration.py  uncertainty bands per method family, from measured residuals
- accuracy.py     how far predictions are from measurements (the summary every comparison prints)
The `budget:` block is harness/suite/budget_profile.py; verdicts against it are
harness/plan/budget.py; `ftbench memcheck` is harness/show/memcheck.py.
"""
