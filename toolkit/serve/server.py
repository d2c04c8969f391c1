"""Run the service: load and warm up the bundle, bind, serve with uvicorn until SIGTERM or
Ctrl-C. SIGTERM is a graceful stop: no new connections, the requests in flight answered (each
within the request timeout), then exit 0."""

from __future__ import annotations

import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from spamkit.errors import SpamkitError
from spamkit.runtime.classifier import Classifier
from spamkit.serve import access
from spamkit.serve.app import build_app
from spamkit.serve.config import ServeConfig
from spamkit.serve.protocol import bounded_protocol

# Past the request timeout, uvicorn's graceful stop cancels what is left; this is the margin
# for the answers already computed to leave.
SHUTDOWN_MARGIN_S = 1.0
BACKLOG = 2048  # uvicorn's own default


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8000


def serve_bundle(bundle: Path, config: ServeConfig, listen: Listen, device: str = "cpu",
                 precision: str | None = None, threads: int | None = None,
                 digest: str | None = None) -> None:
    classifier = Classifier.load(bundle, device=device, threads=threads, precision=precision,
                                 digest=digest)
    classifier.predict_proba(["warm-up"])  # the first run allocates; no request waits for it
    app = build_app(classifier, config)
    sock = bind(listen)
    server = uvicorn.Server(uvicorn.Config(
        app, log_level=config.log_level, access_log=False, lifespan="on", backlog=BACKLOG,
        http=bounded_protocol(config), ws="none",  # no upgrade past the protocol's limits
        timeout_graceful_shutdown=config.request_timeout_s + SHUTDOWN_MARGIN_S))
    access.configure(config.log_level)  # uvicorn's access log is off: ours has the latency
    host, port = sock.getsockname()[:2]
    print(f"spamkit: serving {bundle} ({classifier.precision} on {classifier.device}) at "
          f"http://{host}:{port}", file=sys.stderr, flush=True)
    # uvicorn re-raises the signal it stopped on; a graceful stop on SIGTERM is a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[sock])
    if not server.started:
        raise SpamkitError("the server did not start (see uvicorn's message above)")


def bind(listen: Listen) -> socket.socket:
    """A socket listening at host:port (port 0: any free port), or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise SpamkitError(f"cannot listen on {listen.host}:{listen.port}: {e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)  # connectable from here on, before uvicorn accepts
    except OSError as e:
        sock.close()
        raise SpamkitError(f"cannot listen on {listen.host}:{listen.port}: "
                           f"{e.strerror or e}") from None
    return sock
