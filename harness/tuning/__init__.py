"""Hyperparameter tuning with Optuna: `ftbench tune`, one study per cell, trials as ordinary
runs scheduled by the runner's loop, tuned re-runs (study.py). The search-space types are part
of the suite (harness/suite/search_space.py); the run side of a trial is harness/run/trial.py.
"""
