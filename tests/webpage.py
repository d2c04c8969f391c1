"""What the `browser` and `node` tests (and benchmarks/web_latency.py) need beside pytest: the
set-up `make web-deps` makes, a static server, and Chromium driven by Playwright.

They run under `make test-web`. Missing set-up is a failure saying to run `make web-deps`; only
SPAMKIT_SKIP_WEB=1 skips them (for a machine that cannot install a browser or Node.js).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_PORT = ROOT / "ports" / "node"
ORT_WEB = ROOT / "toolkit" / "web" / "node_modules" / "onnxruntime-web"
# Debian's headless Chromium (apt: chromium-headless-shell) or its full one; Playwright's own
# browser download is not needed.
CHROMIUM_PATHS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
# A page is ready when its status leaves "loading" (app.js sets "ready" or "error").
READY = "document.getElementById('status').dataset.state !== 'loading'"
LOCAL = "http://127.0.0.1:"  # the servers of the tests; anything else is "outside"


def require(what: str, present: bool) -> None:
    """Skip when the user opted out of the web tests; else fail unless `present`."""
    if os.environ.get("SPAMKIT_SKIP_WEB") == "1":
        pytest.skip("SPAMKIT_SKIP_WEB=1")
    if not present:
        pytest.fail(f"{what} is not set up: run `make web-deps` (or SPAMKIT_SKIP_WEB=1 to skip)")


def chromium() -> str:
    require("Playwright (pip)", importlib.util.find_spec("playwright") is not None)
    found = os.environ.get("SPAMKIT_CHROMIUM") or next(
        (p for p in CHROMIUM_PATHS if Path(p).is_file()), None)
    require("Chromium", found is not None)
    return found


def node() -> str:
    found = shutil.which("node")
    require("Node.js with onnxruntime-node",
            found is not None and (NODE_PORT / "node_modules" / "onnxruntime-node").is_dir())
    return found


def written_site(bundle: Path, out: Path) -> Path:
    """`out`, where `spamkit web BUNDLE --out OUT` has written the site, as a user runs it."""
    from conftest import spamkit_cli

    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    result = spamkit_cli("web", bundle, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@contextlib.contextmanager
def served(directory: Path) -> Iterator[str]:
    """The URL of a static HTTP server on 127.0.0.1 serving `directory`."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def browser_page(outside: list[str], service_workers: str = "allow",
                 gpu: bool = False) -> Iterator:
    """A Chromium page, not yet opened, offline: any request that leaves 127.0.0.1 is refused and
    its URL appended to `outside`. Routed for the whole context, so that the requests of the
    page's service worker are seen too (`service_workers="block"` gives it none). Headless
    Chromium has WebGPU but no adapter; `gpu` gives it SwiftShader's, a GPU emulated on the CPU."""
    from playwright.sync_api import sync_playwright

    def only_local(route) -> None:
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(),
                                    args=["--enable-unsafe-webgpu"] if gpu else [])
        try:
            context = browser.new_context(viewport={"width": 900, "height": 640},
                                          service_workers=service_workers)
            context.route("**/*", only_local)
            yield context.new_page()
        finally:
            browser.close()


@contextlib.contextmanager
def opened(url: str, outside: list[str], service_workers: str = "allow",
           loads: list[str] | None = None, gpu: bool = False) -> Iterator:
    """A Chromium page (browser_page) at `url`, ready (open_page)."""
    with browser_page(outside, service_workers, gpu) as page:
        open_page(page, url, loads)
        yield page


def open_page(page, url: str, loads: list[str] | None = None) -> None:
    """Go to `url` and wait until the page is ready, after the one reload its service worker may
    ask for; each load of the page, reloads included, is appended to `loads`."""
    if loads is not None:
        page.on("framenavigated",
                lambda frame: frame == page.main_frame and loads.append(frame.url))
    page.goto(url)
    page.wait_for_function(READY, timeout=120_000)


def classify_in_page(page, texts: list[str]) -> list[dict]:
    """{label, probabilities, ms} for each text, one at a time, as the page classifies them."""
    return page.evaluate("""async (texts) => {
        const spamkit = await window.spamkit;
        const out = [];
        for (const text of texts) out.push(await spamkit.classify(text));
        return out;
    }""", texts)
