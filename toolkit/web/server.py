"""`spamkit web --serve PORT`: serve the site on this machine (127.0.0.1) with the two headers
that make the page cross-origin isolated on its first load, so onnxruntime-web may run threads
without the page's service worker (static/isolation-sw.js adds the same two otherwise).
Python's own http.server: for local use, not a production server.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from spamkit.errors import SpamkitError

HOST = "127.0.0.1"  # this machine only
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin",
                     "Cross-Origin-Embedder-Policy": "require-corp"}


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the site, each response with ISOLATION_HEADERS."""

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, *args) -> None:  # a line per request would bury the address
        pass


@contextlib.contextmanager
def listening(port: int | None, site: Path) -> Iterator[http.server.ThreadingHTTPServer | None]:
    """A server bound to HOST:`port` (0: any free port) for the site that will be at `site`, or
    None without a port; bound first, so a busy port is one line before anything is written."""
    if port is None:
        yield None
        return
    handler = functools.partial(IsolatedHandler, directory=str(site))
    try:
        server = http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise SpamkitError(f"cannot listen on {HOST}:{port}: {e.strerror or e}") from None
    with server:
        yield server


def serve_site(server: http.server.ThreadingHTTPServer, site: Path) -> None:
    """Serve until Ctrl-C (exit 130, as any command interrupted) or SIGTERM (a normal stop)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {site} at http://{HOST}:{server.server_address[1]}/ with cross-origin "
          "isolation, so the page runs threads (Ctrl-C stops it)", flush=True)
    server.serve_forever()
