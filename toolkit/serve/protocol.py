"""uvicorn's httptools protocol with the limits it lacks: the request line and headers are
bounded in bytes (431), a request must arrive whole within the read timeout (408, or the
connection dropped once its body has started), and every refusal at this level is JSON."""

from __future__ import annotations

import asyncio
import functools
import http
import json
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from spamkit.serve.config import ServeConfig
from spamkit.serve.guard import reply


def bounded_protocol(limits: ServeConfig) -> Callable[..., asyncio.Protocol]:
    """What uvicorn.Config(http=...) takes: a factory of BoundedHttp connections."""
    return functools.partial(BoundedHttp, limits=limits)


class BoundedHttp(HttpToolsProtocol):
    def __init__(self, *args, limits: ServeConfig, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.head_bytes = 0  # of the request being read, until its headers end
        self.head_done = False
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is timed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._arm()
        if not self.head_done:
            self.head_bytes += len(data)
        super().data_received(data)
        # httptools keeps an unfinished header whole: refuse before it outgrows the limit.
        if not self.head_done and self.head_bytes > self.limits.max_header_bytes:
            self._refuse(431, self._too_large())

    def on_headers_complete(self) -> None:
        self.head_done = True
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size <= self.limits.max_header_bytes:
            super().on_headers_complete()
            return
        # A head that arrived whole in one read: answered by an app that refuses it.
        self.app, app = functools.partial(refuse, 431, self._too_large()), self.app
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the next request's clock starts with its first byte
        self.head_bytes, self.head_done = 0, False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse, as JSON."""
        self._refuse(400, "the request is not valid HTTP/1.1")

    def _too_large(self) -> str:
        return (f"the request line and headers are over the {self.limits.max_header_bytes}-byte "
                "limit (--max-header-bytes)")

    def _arm(self) -> None:
        if self.deadline is None:
            self.deadline = self.loop.call_later(self.limits.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.flow.read_paused:  # the server is behind on this connection, not the client
            self._arm()
        elif self.head_done:  # the app has the request: it sees the client gone
            self.transport.close()
        else:
            self._refuse(408, f"the request did not arrive within {self.limits.read_timeout_s:g}"
                         " s (--read-timeout-s)")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer `status` unless a response is under way on this connection, and close it."""
        if not self.transport.is_closing() and (self.cycle is None
                                                or self.cycle.response_complete):
            body = json.dumps({"detail": detail}).encode()
            head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode(),
                    *(name + b": " + value for name, value in self.server_state.default_headers),
                    b"content-type: application/json",
                    b"content-length: " + str(len(body)).encode(), b"connection: close"]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


async def refuse(status: int, detail: str, scope, receive, send) -> None:
    await reply(send, status, detail)
