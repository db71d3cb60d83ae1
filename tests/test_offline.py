"""The hub probe asks the endpoint huggingface_hub will use, through the environment's proxies;
HF_HUB_OFFLINE wins. Only local servers: nothing here touches the internet."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.models import offline

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")  # fmt: skip


class _Hub(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        type(self).seen.append(self.path)  # a proxy sees the absolute URL
        self.send_response(401)  # the hub answers; that it refuses an anonymous call is fine
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Hub.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (*PROXY_VARS, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    offline.hub_reachable.cache_clear()
    yield
    offline.hub_reachable.cache_clear()


def test_a_mirror_named_by_hf_endpoint_is_reachable(server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server + "/")
    assert offline.hub_endpoint() == server
    assert offline.hub_reachable()
    assert _Hub.seen == ["/api/models?limit=1"]


def test_hf_hub_offline_wins_over_a_reachable_endpoint(server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not offline.hub_reachable()
    assert _Hub.seen == []  # not even asked


def test_an_endpoint_that_does_not_answer_is_unreachable(server, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert not offline.hub_reachable(timeout_s=1.0)


def test_the_probe_goes_through_the_environments_proxy(server, monkeypatch):
    # A host that resolves nowhere: only the proxy (the local server) can answer for it.
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example.invalid")
    monkeypatch.setenv("HTTP_PROXY", server)
    assert offline.hub_reachable()
    assert _Hub.seen == ["http://hub.example.invalid/api/models?limit=1"]
