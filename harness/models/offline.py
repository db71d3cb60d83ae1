"""Fast offline detection: decide once whether the Hugging Face Hub can be reached.

Without HF_HUB_OFFLINE=1, every hub lookup retries for ~50 s before failing; a short HTTP probe
decides up front and sets the variable (it must be set before transformers or huggingface_hub
is imported: both read it once, at import). The probe asks the endpoint huggingface_hub will
use (HF_ENDPOINT: a mirror) through the proxies the environment names (HTTPS_PROXY, HTTP_PROXY,
NO_PROXY, as urllib and requests read them), so a user behind a proxy or on a mirror is not put
offline. HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set by the user always wins.
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request

_FALSE = {"", "0", "false", "no", "off"}
DEFAULT_ENDPOINT = "https://huggingface.co"  # huggingface_hub.constants' default


def hub_endpoint() -> str:
    """The endpoint huggingface_hub uses, read the way huggingface_hub.constants reads it (that
    module is not imported here: importing it would freeze HF_HUB_OFFLINE before it is set)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_requested() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() not in _FALSE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@functools.cache
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether an HTTP request to the endpoint gets an answer (any status below 500: a 401 or 404
    still means the hub answers; a proxy's 502 means it does not)."""
    if offline_requested():
        return False
    opener = urllib.request.build_opener(urllib.request.ProxyHandler())  # proxies from the env
    request = urllib.request.Request(hub_endpoint() + "/api/models?limit=1", method="HEAD")
    try:
        with opener.open(request, timeout=timeout_s):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):  # URLError, timeouts, refused connections; a malformed URL
        return False


def configure_offline_mode() -> bool:
    """Set HF_HUB_OFFLINE=1 when the hub is unreachable. Returns whether the hub is reachable."""
    reachable = hub_reachable()
    if not reachable:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return reachable


class ModelUnavailableError(RuntimeError):
    """The model cannot be loaded here; the message says which one and how to get it."""
