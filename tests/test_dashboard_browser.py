"""The real dashboard (`streamlit run`) in headless Chromium: every page renders its content.

Needs Debian's chromium: installed once with apt-get when running as root, skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest
from dashboard_fixtures import build_fixture_db
from frontier_fixtures import build_store

from dashboard import screenshots

pytestmark = pytest.mark.browser

# Table cells (st.dataframe draws a canvas, mirrored into an accessible grid) and texts per page.
EXPECT = {
    "leaderboard": ("lora", "ia3", "tied", "leader", "failed 1 · oom 1"),
    "pareto": ("Frontier", "ia3"),
    "run_detail": ("Resolved config", "Provenance"),
    "compare": ("Config", "differing key"),
    "tuning": ("No tuning trials yet",),
    "embeddings": ("No embedding metrics yet",),
    "frontier": ("Points", "At matched KL", "x=2", "ahead"),
    "reproducibility": ("No reproducibility checks yet",),
    "memory": ("No finished run has both a prediction and a measurement",),
}
_install_tried = False


def chromium() -> str:
    global _install_tried
    found = screenshots.find_chromium()
    can_install = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")
    if found is None and can_install and not _install_tried:
        _install_tried = True
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        found = screenshots.find_chromium()
    if found is None:
        pytest.skip(
            "no chromium: install Debian's `chromium` package (apt-get install chromium); "
            "the test installs it itself only when running as root"
        )
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    browser_bin = chromium()
    db = build_fixture_db(tmp_path_factory.mktemp("browser") / "fixture.duckdb")
    build_store(db, suite="rlhf_demo")  # alignment runs, in a suite listed after the others
    with screenshots.streamlit_server(db) as url, screenshots.Browser(browser_bin) as browser:
        yield url, browser


@pytest.mark.parametrize("page", screenshots.PAGES, ids=lambda p: p.name)
def test_page_renders_in_a_browser(page, served, tmp_path):
    url, browser = served
    query = "?model=tiny" if page.name in ("leaderboard", "pareto") else ""
    text = browser.open(f"{url}/{page.path}{query}", page.expect + EXPECT[page.name])
    assert browser.count("[data-testid=stException]") == 0, text[:2000]  # no uncaught error box
    assert "Could not read the results database" not in text
    shot = browser.screenshot(tmp_path / f"{page.name}.png").read_bytes()
    assert png_size(shot) == (1400, 1000)
    # Streamlit's grey loading skeleton alone compresses to ~8 KB; a rendered page is far larger.
    assert len(shot) > 25_000, len(shot)
