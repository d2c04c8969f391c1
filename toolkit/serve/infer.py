"""The one path every inference route takes: the request's limits, then the micro-batcher.
Refusals are HTTPExceptions with spamkit's statuses; each protocol's handler shapes them."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import HTTPException, Request

from spamkit.serve.batcher import Batcher, QueueFull
from spamkit.serve.config import ServeConfig


async def run_texts(texts: list[str], where: str, request: Request, config: ServeConfig,
                    batcher: Batcher) -> np.ndarray:
    """The logits of `texts`, in order, computed with every other request's messages.

    Args:
        texts: the request's messages.
        where: how the request names its list of messages (`texts`), for error messages.
        request: the request, whose message count the metrics take.
        config: the limits.
        batcher: the micro-batcher that runs the model.

    Returns:
        float32 [len(texts), classes]: what Classifier.logits gives each message alone.

    Raises:
        HTTPException: 413 or 422 over a limit, 503 for a full queue, 504 past the timeout."""
    request.state.messages = len(texts)
    check_texts(texts, config, where)
    try:
        return await batcher.classify(texts)
    except QueueFull as e:
        raise HTTPException(503, f"busy: {e}", headers={"Retry-After": "1"}) from None
    except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
        raise HTTPException(504, f"not answered within {config.request_timeout_s:g} s "
                            "(--request-timeout-s)") from None


def check_texts(texts: list[str], config: ServeConfig, where: str = "texts") -> None:
    if len(texts) > config.max_messages:
        raise HTTPException(413, f"{len(texts)} messages in one request; at most "
                            f"{config.max_messages}")
    for i, text in enumerate(texts):
        if len(text) > config.max_chars:
            raise HTTPException(422, f"{where}[{i}] has {len(text)} characters; at most "
                                f"{config.max_chars}")
