"""Moved to harness/store/stats.py (the statistics live in the store); kept for old imports."""

from harness.store.stats import *  # noqa: F403
from harness.store.stats import MIN_CI_SEEDS, N_RESAMPLES  # noqa: F401
