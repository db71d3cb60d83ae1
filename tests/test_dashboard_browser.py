"""The real dashboard (`streamlit run`) in headless Chromium: every page renders its content, with
no warning or error box, and its charts drawn.

Needs Debian's chromium (`make test` installs it when missing and running as root). Without it the
test skips, except under CI (`CI` set), where a skipped browser test would hide a broken page.
"""

from __future__ import annotations

import os
import struct

import pytest
from dashboard_fixtures import EXPECTED_ALERTS, EXPECTED_CHARTS, build_full_db

from dashboard import screenshots

pytestmark = pytest.mark.browser

# Table cells (st.dataframe draws a canvas, mirrored into an accessible grid) and texts per page.
EXPECT = {
    "leaderboard": ("lora", "ia3", "tied", "leader", "failed 1 · oom 1"),
    "pareto": ("Frontier", "ia3"),
    "run_detail": ("Resolved config", "Provenance"),
    "compare": ("Config", "differing key"),
    "tuning": ("3 trials (3 complete)", "Expected best vs budget"),
    "embeddings": ("No embedding metrics yet",),
    "frontier": ("Points", "At matched KL", "x=2", "ahead"),
    "reproducibility": ("reproduced",),
    "memory": ("No finished run has both a prediction and a measurement",),
}
# screenshots.PAGES names -> the AppTest page names of dashboard_fixtures' expectations.
APPTEST_NAME = {"run_detail": "run", "reproducibility": "repro"}
ALERT_BOXES = (
    "[data-testid=stAlertContentWarning],[data-testid=stAlertContentError],"
    "[data-testid=stException]"
)
# The <svg>/<canvas> vega draws, one per chart (inner <g class="marks"> groups left out).
CHART_MARKS = "[data-testid=stVegaLiteChart] :is(svg.marks, canvas.marks)"


def chromium() -> str:
    found = screenshots.find_chromium()
    if found is None:
        why = "no chromium: `make test` installs it (as root), or apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI is set, so the browser test must run")
        pytest.skip(why)
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    browser_bin = chromium()
    db = build_full_db(tmp_path_factory.mktemp("browser") / "full.duckdb")
    with screenshots.streamlit_server(db) as url, screenshots.Browser(browser_bin) as browser:
        yield url, browser


@pytest.mark.parametrize("page", screenshots.PAGES, ids=lambda p: p.name)
def test_page_renders_in_a_browser(page, served, tmp_path):
    url, browser = served
    query = "?model=tiny" if page.name in ("leaderboard", "pareto") else ""
    text = browser.open(f"{url}/{page.path}{query}", page.expect + EXPECT[page.name])
    name = APPTEST_NAME.get(page.name, page.name)
    assert browser.count(ALERT_BOXES) == len(EXPECTED_ALERTS.get(name, [])), text[:2000]
    assert browser.count(CHART_MARKS) == EXPECTED_CHARTS.get(name, 0), text[:2000]
    assert "Could not read the results database" not in text
    shot = browser.screenshot(tmp_path / f"{page.name}.png").read_bytes()
    assert png_size(shot) == (1400, 1000)
    # Streamlit's grey loading skeleton alone compresses to ~8 KB; a rendered page is far larger.
    assert len(shot) > 25_000, len(shot)
