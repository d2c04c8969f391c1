"""Threads in the browser: the page `spamkit web` writes makes itself cross-origin isolated with
its service worker (one reload, the first time) and runs as many onnxruntime-web threads as the
browser has cores, with the Python runtime's answers; without isolation it says so and runs
one; `spamkit web --serve` sends the headers itself. Run by `make test-web`."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_clean_failure, spamkit_cli
from test_web import assert_answers_as_python
from webpage import (
    ORT_WEB,
    READY,
    browser_page,
    open_page,
    opened,
    require,
    served,
    written_site,
)

pytestmark = pytest.mark.browser

ISOLATED = "crossOriginIsolated"  # what the page's browser says, read with page.evaluate


@pytest.fixture(scope="module")
def site(tiny_bundle, tmp_path_factory) -> Path:
    return written_site(tiny_bundle, tmp_path_factory.mktemp("web") / "site")


def threads(page) -> tuple[int, str]:
    """The threads onnxruntime-web runs, as the page read them back, and what the page says."""
    return int(page.get_attribute("#threads", "data-threads")), page.inner_text("#threads")


def test_a_plain_static_server_gets_threads_after_one_reload(site, tiny_bundle):
    outside: list[str] = []
    loads: list[str] = []
    with served(site) as url, opened(url, outside, loads=loads) as page:
        assert loads == [url, url]  # the first load, and the one reload
        cores = page.evaluate("navigator.hardwareConcurrency")
        assert page.evaluate(ISOLATED) is True
        count, said = threads(page)
        assert count == cores
        assert said.startswith(f"{cores} thread") and "is cross-origin isolated" in said
        assert_answers_as_python(page, tiny_bundle)
        page.goto(url)  # opened again, with its service worker in place: no reload
        page.wait_for_function(READY)
        assert loads == [url, url, url]
        assert page.evaluate(ISOLATED) is True
    assert outside == []  # the service worker's requests included


def test_with_service_workers_blocked_the_page_says_so_and_runs_one_thread(
        site, tiny_bundle):
    loads: list[str] = []
    with served(site) as url, opened(url, [], service_workers="block", loads=loads) as page:
        assert page.evaluate(ISOLATED) is False
        count, said = threads(page)
        assert count == 1
        assert said.startswith("1 thread: this page is not cross-origin isolated (its service "
                               "worker could not be registered")
        assert "spamkit web --serve" in said
        assert_answers_as_python(page, tiny_bundle)
    assert loads == [url]


def test_a_service_worker_that_cannot_control_the_page_reloads_it_once_not_again(site):
    """The browser's developer tools' "Bypass for network": the worker is installed but never
    controls the page, which reloads once, then runs one thread and says why."""
    loads: list[str] = []
    with served(site) as url, browser_page([]) as page:
        devtools = page.context.new_cdp_session(page)
        devtools.send("Network.enable")
        devtools.send("Network.setBypassServiceWorker", {"bypass": True})
        open_page(page, url, loads)
        count, said = threads(page)
    assert loads == [url, url]
    assert count == 1
    assert "its service worker does not control it" in said


def test_the_service_worker_leaves_a_redirect_as_the_server_sent_it(site):
    """A folder's address without its slash, under the worker's control: the server's redirect
    reaches the browser, which follows it."""
    with served(site) as url, opened(url, []) as page:
        assert page.evaluate(ISOLATED) is True
        response = page.goto(url + "vendor")
        assert response is not None and response.ok
        assert page.url == url + "vendor/"
        assert "ort.wasm.min.mjs" in page.inner_text("body")


@contextlib.contextmanager
def serving(bundle: Path, out: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`spamkit web BUNDLE --out OUT --serve 0` running, and the address it printed."""
    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    proc = subprocess.Popen(
        [sys.executable, "-m", "spamkit", "web", str(bundle), "--out", str(out), "--serve", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As a terminal's Ctrl-C: a child of a CI runner may inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        for line in proc.stdout:
            if line.startswith("serving "):
                yield proc, re.search(r"http://\S+/", line).group()
                return
        pytest.fail(f"no address printed; exit {proc.wait()}: {proc.stderr.read()}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_spamkit_web_serve_isolates_the_page_on_its_first_load_until_ctrl_c(
        tiny_bundle, tmp_path):
    loads: list[str] = []
    with serving(tiny_bundle, tmp_path / "site") as (proc, url):
        with opened(url, [], loads=loads) as page:
            assert page.evaluate(ISOLATED) is True
            count, _ = threads(page)
            assert count == page.evaluate("navigator.hardwareConcurrency")
            assert_answers_as_python(page, tiny_bundle)
        assert loads == [url]  # no reload: the server sent the headers
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert "Traceback" not in proc.stderr.read()


def test_spamkit_web_serve_stops_on_sigterm_with_exit_0(tiny_bundle, tmp_path):
    with serving(tiny_bundle, tmp_path / "site") as (proc, _):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == ""


def test_spamkit_web_serve_on_a_busy_port_is_one_line_and_writes_nothing(tiny_bundle, tmp_path):
    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    out = tmp_path / "site"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = spamkit_cli("web", tiny_bundle, "--out", out, "--serve", port)
    assert_clean_failure(result, f"cannot listen on 127.0.0.1:{port}", "in use", out=out)
