"""The old import path of harness.models.architectures (../shared/gpu/make_models.py uses it)."""

from harness.models.architectures import *  # noqa: F403
from harness.models.architectures import catalogue, config_from_dict  # noqa: F401
