"""The ASGI layer in front of POST /v1/classify: refuses a body over the limit before the
framework reads it, and records every answer's outcome, messages and latency."""

from __future__ import annotations

import json
import time

from spamkit.serve.metrics import Metrics, outcome_of

CLASSIFY = "/v1/classify"


class ClassifyGuard:
    def __init__(self, app, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        # Other methods on the path go to the router, which answers 405 with Allow: POST.
        if scope["type"] != "http" or scope["path"] != CLASSIFY or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]
        state = scope.setdefault("state", {})

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if not _is_json(scope):
                await reply(send_status, 415, "send the body as Content-Type: application/json")
            elif body is None:
                await reply(send_status, 413, f"the request body is over the "
                            f"{self.max_body_bytes}-byte limit")
            else:
                await self.app(scope, _replay(body, receive), send_status)
        finally:
            self.metrics.record_request(outcome_of(status[0]), state.get("messages", 0),
                                        time.perf_counter() - start)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None once it is over the limit (by its Content-Length, or by
        what arrived when there is none)."""
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _is_json(scope) -> bool:
    kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


def _replay(body: bytes, receive):
    """A receive() that gives the body already read, then waits as the original does."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
