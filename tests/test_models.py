from __future__ import annotations

import time

import pytest

from harness.models import ModelUnavailableError, resolve_model
from harness.models.offline import hub_reachable
from harness.suite.registry import UnknownNameError
from harness.suite.spec import ModelSpec


def test_offline_is_detected_without_waiting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    start = time.perf_counter()
    assert hub_reachable() is False
    assert time.perf_counter() - start < 1.0
    hub_reachable.cache_clear()


def test_unknown_asset_suggests_the_right_name():
    with pytest.raises(
        UnknownNameError,
        match="did you mean 'smollm2-135m-instruct'",
    ):
        from harness.models import MODEL_ASSETS

        MODEL_ASSETS.get("smollm2-135m-instrct")


def test_hub_model_unavailable_offline_says_which_and_how(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model(ModelSpec(hub="someone/not-cached-model", revision="abc123"))
    message = str(err.value)
    assert (
        "someone/not-cached-model" in message
        and "hub" in message
        and "smollm2-135m-instruct" in message
    )
    hub_reachable.cache_clear()


def test_missing_local_path():
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve_model(ModelSpec(path="/nonexistent/model"))


def test_tiny_asset_builds_once_with_provenance():
    first = resolve_model(ModelSpec(asset="tiny-random-llama"))
    second = resolve_model(ModelSpec(asset="tiny-random-llama"))
    assert first.location == second.location
    assert len(first.provenance["model_file_sha256"]) == 64
