"""The ASGI layer in front of the inference routes (POST /v1/classify, /predict and
/v2/models/NAME/infer): refuses a body over the limit before the framework reads it, and
records every answer's outcome, messages and latency."""

from __future__ import annotations

import json
import time

from spamkit.serve.errors import error_body
from spamkit.serve.metrics import Metrics, outcome_of

CLASSIFY = "/v1/classify"
PREDICT = "/predict"  # text-embeddings-inference's


def is_inference(path: str) -> bool:
    """Whether `path` is a route that runs the model."""
    return path in (CLASSIFY, PREDICT) or (path.startswith("/v2/models/")
                                           and path.endswith("/infer"))


class ClassifyGuard:
    def __init__(self, app, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        # Other methods on the path go to the router, which answers 405 with Allow: POST.
        if (scope["type"] != "http" or not is_inference(scope["path"])
                or scope["method"] != "POST"):
            await self.app(scope, receive, send)
            return
        start, status, path = time.perf_counter(), [500], scope["path"]
        state = scope.setdefault("state", {})

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if not _is_json(scope):
                await reply(send_status, 415, "send the body as Content-Type: application/json",
                            path)
            elif body is None:
                await reply(send_status, 413, f"the request body is over the "
                            f"{self.max_body_bytes}-byte limit", path)
            else:
                await self.app(scope, _replay(body, receive), send_status)
        finally:
            # A protocol may answer with a status of its own: the app says what it meant.
            self.metrics.record_request(state.get("outcome") or outcome_of(status[0]),
                                        state.get("messages", 0), time.perf_counter() - start)

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


async def reply(send, status: int, detail: str, path: str = "") -> None:
    """Answer `status` with `detail`, in the shape of the protocol of `path` (spamkit's when
    there is none: the HTTP layer refuses before any route)."""
    status, payload = error_body(path, status, detail)
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
