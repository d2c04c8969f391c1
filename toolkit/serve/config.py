"""The settings of `spamkit serve` (limits, batching, names, logging), each with its option's
help. Free of FastAPI and uvicorn, so the CLI can show them without the serve extra."""

from __future__ import annotations

import re
from dataclasses import dataclass

from spamkit.config import option
from spamkit.errors import SpamkitError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
# One path segment of /v2/models/{name}, as KServe's model names are.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = option(64, "Micro-batch: at most this many messages taken from the queue "
                            "for one run of the model (1: no micro-batching).", min=1)
    max_batch_tokens: int = option(
        8192, "Micro-batch: at most this many padded tokens (its messages times its longest); "
        "a longer message runs alone.", min=1)
    # 0: a batch takes what waits when the worker comes free. On a CPU the worker is the
    # bottleneck, so requests queue up while it runs and batches form without any waiting.
    max_wait_ms: float = option(0.0, "Micro-batch: how long the first message waits for more "
                                "before the batch runs.", min=0.0)
    max_queue: int = option(1024, "Messages waiting at most; a request that does not fit is "
                            "answered 503 with Retry-After.", min=1)
    request_timeout_s: float = option(10.0, "A request not answered within this is answered "
                                      "504; SIGTERM's graceful stop waits about this long at "
                                      "most.", min=0.001)
    max_body_bytes: int = option(1 << 20, "Largest request body (413 beyond).", min=1)
    max_header_bytes: int = option(1 << 15, "Longest request line and headers together, in "
                                   "bytes (431 beyond).", min=1)
    read_timeout_s: float = option(10.0, "A request must arrive whole (line, headers and body) "
                                   "within this of its first byte, or of the connection for its "
                                   "first: a slower client is answered 408, or dropped once its "
                                   "body has started.", min=0.001)
    max_messages: int = option(256, "Most messages in one request (413 beyond).", min=1)
    max_chars: int = option(20_000, "Longest message, in characters (422 beyond).", min=1)
    model_name: str = option("spamkit", "The model's name in KServe's /v2/models/NAME paths and "
                             "text-embeddings-inference's /info (letters, digits, . _ -).")
    log_level: str = option("info", "Log level: " + ", ".join(LOG_LEVELS) + " (uvicorn's).",
                            choices=LOG_LEVELS)
    access_log: bool = option(False, "One JSON line per request on stderr (method, path, "
                              "status, seconds) at the info level.",
                              flag="--access-log/--no-access-log")

    def __post_init__(self) -> None:
        # Checked here so that a name no route could match is one line at start-up.
        if not MODEL_NAME.fullmatch(self.model_name):
            raise SpamkitError(f"--model-name {self.model_name!r} is not one path segment of "
                               "letters, digits, '.', '_' and '-'")
