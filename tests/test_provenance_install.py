"""A run's code identity when ftbench was pip-installed from a git URL (no checkout to ask)."""

from __future__ import annotations

import json

import pytest

from harness.runs import provenance


class _Dist:
    def __init__(self, direct_url):
        self.text = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name):
        return self.text if name == "direct_url.json" else None


@pytest.mark.parametrize(
    "direct_url,expected",
    [
        ({"url": "https://github.com/x/ftbench", "vcs_info": {"vcs": "git", "commit_id": "abc123"}},
         {"git_commit": "abc123", "git_dirty": False}),
        ({"url": "file:///tmp/ftbench", "dir_info": {}}, {"git_commit": None, "git_dirty": None}),
        (None, {"git_commit": None, "git_dirty": None}),  # from an index: no direct_url.json
    ],
)  # fmt: skip
def test_outside_a_checkout_the_installed_commit_is_the_code(
    direct_url, expected, monkeypatch, tmp_path
):
    monkeypatch.setattr(
        provenance.importlib.metadata, "distribution", lambda name: _Dist(direct_url)
    )
    assert provenance.git_state(tmp_path) == expected  # tmp_path: not a git repository


def test_a_checkout_answers_for_itself(monkeypatch):
    monkeypatch.setattr(
        provenance.importlib.metadata, "distribution",
        lambda name: _Dist({"vcs_info": {"commit_id": "not-this"}}),
    )  # fmt: skip
    assert provenance.git_state()["git_commit"] not in (None, "not-this")
