"""Hyperparameter tuning with Optuna.

- space.py    the suite's `tune:` block and per-method search spaces (Optuna's suggest_*)
- study.py    `ftbench tune`: one study per cell, trials as ordinary runs, tuned re-runs
- reporter.py the run side of a trial: intermediate validation scores, pruning
"""
