"""Preference alignment (issue 6): reward model, PPO / DPO / KTO, a separate judge."""

from harness.alignment import backend, task  # noqa: F401  (registers the backend and the task)
