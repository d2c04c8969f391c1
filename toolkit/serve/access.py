"""The access log (`--access-log`): one JSON line per request that reaches the application
(method, path, status, seconds, client) on stderr, at the info level of `--log-level`."""

from __future__ import annotations

import json
import logging
import sys
import time

from uvicorn.config import LOG_LEVELS

LOGGER = logging.getLogger("spamkit.access")


def configure(level: str) -> None:
    """Send the access log to stderr, a bare line per request, when `level` lets info through.

    Args:
        level: one of uvicorn's level names (`--log-level`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.propagate = False  # uvicorn's root handlers would add their own prefix
    LOGGER.setLevel(LOG_LEVELS[level])


class AccessLog:
    """ASGI middleware that logs each request once its answer has been sent."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [None]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            status[0] = status[0] or 500  # the error handler outside answers it 500
            raise
        finally:
            client = scope.get("client")
            LOGGER.info(json.dumps({
                "method": scope["method"], "path": scope["path"], "status": status[0],
                "seconds": round(time.perf_counter() - start, 6),
                "client": f"{client[0]}:{client[1]}" if client else None}))
