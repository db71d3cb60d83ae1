"""Fast offline detection: decide once whether the Hugging Face Hub can be reached.

Without HF_HUB_OFFLINE=1, every hub lookup retries for ~50 s before failing; a 2 s socket probe
decides up front and sets the variable (it must be set before transformers is imported).
"""

from __future__ import annotations

import functools
import os
import socket

_FALSE = {"", "0", "false", "no", "off"}


@functools.cache
def hub_reachable(host: str = "huggingface.co", timeout_s: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in _FALSE:
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def configure_offline_mode() -> bool:
    """Set HF_HUB_OFFLINE=1 when the hub is unreachable. Returns whether the hub is reachable."""
    reachable = hub_reachable()
    if not reachable:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return reachable
