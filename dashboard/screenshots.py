"""Drive the real dashboard in headless Chromium: screenshots for the docs, and the browser test.

    .venv/bin/python dashboard/screenshots.py --db results/ftbench.duckdb --out docs/screenshots

Chromium's one-shot `--screenshot` / `--dump-dom` modes (even with --virtual-time-budget) capture
Streamlit's loading skeleton: the page content arrives later over a websocket, which virtual time
does not wait for. So Chromium runs with a DevTools port and we wait, in real time, for each page's
expected text before capturing (DevTools protocol over `websockets`, a Streamlit dependency).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


@dataclass(frozen=True)
class Page:
    name: str  # screenshot file stem
    path: str  # URL path ('' = the default page)
    # Texts that show the page has rendered (body text or table cells); "a|b" accepts either.
    expect: tuple[str, ...]


PAGES = (
    Page("leaderboard", "", ("Leaderboard", "vs leader", "Download CSV")),
    Page("pareto", "pareto", ("Pareto", "Frontier")),
    Page("run_detail", "run", ("Run detail", "Resolved config", "Provenance")),
    Page("compare", "compare", ("Compare runs", "Config", "Curves")),
    Page("tuning", "tuning", ("No tuning trials yet|trials (",)),
    Page("embeddings", "embeddings", ("Embeddings", "No embedding metrics yet|rows from table")),
    Page("frontier", "frontier", ("Alignment frontier", "No alignment policy runs yet|Points")),
    Page(
        "reproducibility",
        "repro",
        ("Reproducibility", "No reproducibility checks yet|rows from table"),
    ),
    Page("memory", "memory", ("Memory", "No memory records yet|No finished run|comparisons")),
)


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.read().strip() == b"ok"
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_server(db: Path, port: int | None = None, timeout_s: float = 60) -> Iterator[str]:
    """`streamlit run dashboard/app.py -- --db DB` on a free localhost port; yields its base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
        "--", "--db", str(db),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"streamlit did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.2)
            yield url
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Browser:
    """One headless Chromium tab, driven over the DevTools protocol."""

    def __init__(self, chromium: str, width: int = 1400, height: int = 1000) -> None:
        self._profile = tempfile.TemporaryDirectory(
            prefix="ftbench-chromium-", ignore_cleanup_errors=True
        )
        self._proc = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                "about:blank",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: close() ends every helper process
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{chromium} did not open a DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
            tab = next(t for t in json.load(resp) if t["type"] == "page")
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(tab["webSocketDebuggerUrl"], max_size=None)
        )
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # skip events until our answer
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def text(self) -> str:
        """Visible body text plus the cells of st.dataframe grids (drawn on a canvas, mirrored
        into an accessible table)."""
        expr = (
            "(document.body ? document.body.innerText : '') + '\\n' + "
            "Array.from(document.querySelectorAll('[role=gridcell],[role=columnheader]'))"
            ".map(e => e.textContent).join('\\n')"
        )
        result = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return result.get("result", {}).get("value") or ""

    def count(self, selector: str) -> int:
        expr = f"document.querySelectorAll({json.dumps(selector)}).length"
        return int(
            self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"]["value"]
        )

    def open(
        self, url: str, expect: Sequence[str], timeout_s: float = 45, settle_s: float = 1.5
    ) -> str:
        """Load url and wait until every expected text shows and the app stopped running."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(any(alt in text for alt in e.split("|")) for e in expect):
                time.sleep(settle_s)  # charts (vega) draw after the text arrives
                return self.text()
            time.sleep(0.25)
        raise TimeoutError(f"{url}: never showed {list(expect)}; last text:\n{text[:2000]}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGTERM)
        _stop(self._proc)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="screenshots of every dashboard page")
    parser.add_argument(
        "--db", type=Path, default=Path(os.environ.get("FTBENCH_DB", "results/ftbench.duckdb"))
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--pages", nargs="*", help="page names (default: all)")
    args = parser.parse_args(argv)
    pages = [p for p in PAGES if not args.pages or p.name in args.pages]
    chromium = find_chromium()
    if chromium is None:
        print("no chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    with (
        streamlit_server(args.db.resolve()) as url,
        Browser(chromium, args.width, args.height) as browser,
    ):
        for page in pages:
            browser.open(f"{url}/{page.path}", page.expect)
            print(browser.screenshot(args.out / f"{page.name}.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
